import AccordCrypto
import AccordServer
import ArgumentParser
import Delivery
import Directory
import Foundation
import Hummingbird
import Institutions
import PGStore
import Rooms
import Webhooks

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP API server.",
        discussion: """
            Connects as the application role (ACCORD_DATABASE_URL), which row-level security \
            applies to. Refuses to start when the database schema is behind (run `accord migrate`) \
            or the database refuses the credentials; when the database is merely unreachable it \
            starts anyway and /readyz answers 503 until the database is back. SIGTERM or SIGINT \
            shut it down gracefully. Sessions resolved recently are kept in memory and forgotten \
            as soon as the database notifies a change (one more connection, for LISTEN); \
            ACCORD_IDENTITY_CACHE_ENTRIES sets how many (default 100000; 0 turns this off). \
            Text searches of the directory match and count facets in an index kept in memory and \
            loaded at start-up (searches use SQL alone until it is loaded, about 30 s and 400 MB \
            for a million institutions); ACCORD_DIRECTORY_INDEX=off turns it off. Behind a \
            reverse proxy, ACCORD_TRUSTED_PROXIES (addresses and CIDR ranges, comma-separated) \
            names the proxies whose X-Forwarded-For gives the client's address, for rate limits \
            and the audit log. Room sockets accept the Origin of ACCORD_PUBLIC_URL, or those \
            ACCORD_ALLOWED_ORIGINS lists (comma-separated).
            """
    )

    @Option(help: "Address to listen on (default: ACCORD_HOST or 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on (default: ACCORD_PORT or 8080).")
    var port: Int?

    @Option(name: .customLong("max-connections"), help: "Most database connections (default: ACCORD_DB_MAX_CONNECTIONS or 16).")
    var maxConnections: Int?

    @OptionGroup var database: DatabaseOptions

    /// `scheme://host[:port]` of a URL.
    static func origin(of url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else { return url }
        return "\(scheme)://\(host)" + (components.port.map { ":\($0)" } ?? "")
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        do {
            let logger = try database.logger("accord")
            let url = try database.resolvedURL(environment: ["ACCORD_DATABASE_URL"])
            let connections = maxConnections ?? environment["ACCORD_DB_MAX_CONNECTIONS"].flatMap(Int.init) ?? 16
            guard connections > 0 else { throw CommandFailure("--max-connections must be positive") }
            let port = self.port ?? environment["ACCORD_PORT"].flatMap(Int.init) ?? 8080
            guard (0...65535).contains(port) else { throw CommandFailure("port \(port) is out of range") }
            var identity = IdentityConfiguration()
            identity.passwordHasher = try DatabaseOptions.passwordHasher()
            identity.publicBaseURL = environment["ACCORD_PUBLIC_URL"] ?? "http://\(host ?? environment["ACCORD_HOST"] ?? "127.0.0.1"):\(port)"
            var bootstrapAdmin: (email: String, password: String)?
            if let email = environment["ACCORD_ADMIN_EMAIL"], !email.isEmpty {
                guard let password = environment["ACCORD_ADMIN_PASSWORD"], !password.isEmpty else {
                    throw CommandFailure("ACCORD_ADMIN_EMAIL is set but ACCORD_ADMIN_PASSWORD is not")
                }
                bootstrapAdmin = (email, password)
            }
            var identityCache: IdentityCache.Configuration? = IdentityCache.Configuration()
            if let text = environment["ACCORD_IDENTITY_CACHE_ENTRIES"] {
                guard let entries = Int(text), entries >= 0 else {
                    throw CommandFailure("ACCORD_IDENTITY_CACHE_ENTRIES must be a whole number (0 turns the cache off)")
                }
                identityCache = entries == 0 ? nil : IdentityCache.Configuration(maxEntries: entries)
            }
            var directoryIndex: DirectoryIndex.Configuration? = DirectoryIndex.Configuration()
            switch environment["ACCORD_DIRECTORY_INDEX"] {
            case nil, "on": break
            case "off": directoryIndex = nil
            case let other?: throw CommandFailure("ACCORD_DIRECTORY_INDEX must be on or off, not '\(other.prefix(40))'")
            }
            let trustedProxies = try TrustedProxies(parsing: environment["ACCORD_TRUSTED_PROXIES"] ?? "")
            var rooms = RoomsConfiguration()
            rooms.publicBaseURL = identity.publicBaseURL
            // Browsers send Origin: by default only the public address's may open sockets.
            let origins = (environment["ACCORD_ALLOWED_ORIGINS"] ?? Self.origin(of: identity.publicBaseURL))
                .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            var configuration = ServerConfiguration(
                host: host ?? environment["ACCORD_HOST"] ?? "127.0.0.1",
                port: port,
                database: try PGConfiguration(url: url, maxConnections: connections),
                schemaDirectory: try SchemaLocator.locate(explicit: database.schemaDirectory),
                identity: identity,
                bootstrapAdmin: bootstrapAdmin,
                identityCache: identityCache,
                directoryIndex: directoryIndex,
                trustedProxies: trustedProxies,
                rooms: rooms,
                allowedOrigins: Set(origins)
            )
            if let token = environment["ACCORD_METRICS_TOKEN"], !token.isEmpty {
                guard token.utf8.count >= 16 else { throw CommandFailure("ACCORD_METRICS_TOKEN must be at least 16 characters") }
                configuration.metricsToken = token
            }
            if let text = environment["ACCORD_METRICS_PORT"], !text.isEmpty {
                guard let metricsPort = Int(text), (1...65535).contains(metricsPort), metricsPort != port else {
                    throw CommandFailure("ACCORD_METRICS_PORT must be a port number (1–65535) other than the API's")
                }
                configuration.metricsPort = metricsPort
            }
            if let instance = environment["ACCORD_INSTANCE"], !instance.isEmpty {
                guard instance.utf8.count <= 100 else { throw CommandFailure("ACCORD_INSTANCE must be at most 100 characters") }
                configuration.roomHub.instance = instance
            }
            switch environment["ACCORD_WEBHOOKS_ALLOW_LOOPBACK"] {
            case nil, "", "false": break
            case "true": configuration.webhooks.allowLoopback = true
            case let other?: throw CommandFailure("ACCORD_WEBHOOKS_ALLOW_LOOPBACK must be true or false, not '\(other.prefix(40))'")
            }
            if let smtp = environment["ACCORD_SMTP_URL"], !smtp.isEmpty {
                let host = URLComponents(string: identity.publicBaseURL)?.host ?? "localhost"
                configuration.smtp = try SMTPConfiguration(url: smtp, from: environment["ACCORD_MAIL_FROM"] ?? "Accord <noreply@\(host)>")
            }
            try await runServer(configuration, logger: logger)
        } catch {
            throw CommandFailure.from(error)
        }
    }
}
