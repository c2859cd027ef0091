import AccordCore
import Admin
import Directory
import Foundation
import Hummingbird
import Institutions
import Logging
import PGStore
import ServiceLifecycle

/// What `accord serve` needs: where to listen, the database, and the migration files.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var database: PGConfiguration
    public var schemaDirectory: URL
    public var identity: IdentityConfiguration
    /// The first network administrator, created at start-up when there is none yet.
    public var bootstrapAdmin: (email: String, password: String)?
    /// Resolved sessions kept in memory (see `IdentityCache`); nil: every request asks the database.
    public var identityCache: IdentityCache.Configuration?
    /// The directory in memory for text searches (see `DirectoryIndex`); nil: searches are SQL only.
    public var directoryIndex: DirectoryIndex.Configuration?
    /// The reverse proxies whose `X-Forwarded-For` names the client.
    public var trustedProxies: TrustedProxies

    public init(
        host: String = "127.0.0.1", port: Int = 8080, database: PGConfiguration, schemaDirectory: URL,
        identity: IdentityConfiguration = IdentityConfiguration(), bootstrapAdmin: (email: String, password: String)? = nil,
        identityCache: IdentityCache.Configuration? = IdentityCache.Configuration(),
        directoryIndex: DirectoryIndex.Configuration? = DirectoryIndex.Configuration(), trustedProxies: TrustedProxies = .none
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.schemaDirectory = schemaDirectory
        self.identity = identity
        self.bootstrapAdmin = bootstrapAdmin
        self.identityCache = identityCache
        self.directoryIndex = directoryIndex
        self.trustedProxies = trustedProxies
    }
}

/// A start-up failure with one line for the operator.
public struct StartupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Builds the router: middleware, then every feature's routes. Tests call this too.
public func buildRouter(
    pool: PGPool, schemaCheck: SchemaCheck, identity: IdentityConfiguration = IdentityConfiguration(),
    identityCache: IdentityCache? = nil, directoryIndex: DirectoryIndex? = nil, trustedProxies: TrustedProxies = .none,
    logger: Logger = Logger(label: "accord")
) -> Router<AccordRequestContext> {
    let router = Router(context: AccordRequestContext.self)
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: ClientAddressMiddleware(trusted: trustedProxies))
    let routes = RouteTable()
    router.add(middleware: ProblemMiddleware(routes: routes))
    HealthController(schemaCheck: schemaCheck, directoryIndex: directoryIndex, logger: logger).addRoutes(to: router)
    OpenAPIController().addRoutes(to: router)

    let reference = ReferenceData(pool: pool)
    let identityService = IdentityService(pool: pool, configuration: identity, reference: reference, cache: identityCache, logger: logger)
    let identityController = IdentityController(identity: identityService)
    identityController.addMeRoute(to: router.group("v1"))
    let v1 = router.group("v1").add(middleware: Authenticator(identity: identityService))
    let authenticated = v1.group(context: AuthenticatedContext.self)
    identityController.addRoutes(public: v1, authenticated: authenticated)
    let admission = AdmissionService(pool: pool, identitiesChanged: { identityCache?.invalidateAll() })
    AdminController(admission: admission).addRoutes(to: v1.group(context: AdminContext.self))
    DirectoryController(directory: DirectoryService(pool: pool, reference: reference, index: directoryIndex), reference: reference).addRoutes(
        to: authenticated)
    routes.record(router.routes.map { (method: $0.method.rawValue, path: $0.path.description) })
    return router
}

/// Builds the Accord application: the HTTP server with its router, and the database pool as a
/// service of the same `ServiceGroup`. Before serving it checks the database: a schema that is
/// behind, or credentials the database refuses, stop start-up with one clear line; an unreachable
/// database only makes `/readyz` answer 503 until it is back.
public func buildApplication(
    _ configuration: ServerConfiguration,
    logger: Logger = Logger(label: "accord")
) throws -> some ApplicationProtocol {
    let migrations = try Migration.load(from: configuration.schemaDirectory)
    let pool = PGPool(configuration: configuration.database, logger: logger)
    let schemaCheck = SchemaCheck(migrations: migrations, pool: pool)
    var services: [any Service] = [pool]
    var identityCache: IdentityCache?
    var directoryIndex: DirectoryIndex?
    if configuration.identityCache != nil || configuration.directoryIndex != nil {
        // One more connection, for LISTEN: the identity cache forgets, and the directory index
        // reads again, whatever the database says changed.
        let listener = PGListener(configuration: configuration.database, logger: logger)
        services.append(listener)
        if let cacheConfiguration = configuration.identityCache {
            let cache = IdentityCache(listener: listener, configuration: cacheConfiguration, logger: logger)
            services.append(cache)
            identityCache = cache
        }
        if let indexConfiguration = configuration.directoryIndex {
            let index = DirectoryIndex(pool: pool, listener: listener, configuration: indexConfiguration, logger: logger)
            services.append(index)
            directoryIndex = index
        }
    }
    let router = buildRouter(
        pool: pool, schemaCheck: schemaCheck, identity: configuration.identity, identityCache: identityCache,
        directoryIndex: directoryIndex, trustedProxies: configuration.trustedProxies, logger: logger)
    var application = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "accord"),
        services: services,
        logger: logger
    )
    application.beforeServerStarts {
        switch await schemaCheck.check() {
        case .current(let count):
            logger.info("database schema is current", metadata: ["migrations": "\(count)"])
            if let admin = configuration.bootstrapAdmin {
                let service = IdentityService(pool: pool, configuration: configuration.identity, reference: ReferenceData(pool: pool), logger: logger)
                do {
                    if try await service.bootstrapNetworkAdmin(email: admin.email, password: admin.password) {
                        logger.notice("created the first network administrator", metadata: ["email": "\(admin.email)"])
                    }
                } catch let problem as Problem {
                    throw StartupError("ACCORD_ADMIN_EMAIL/ACCORD_ADMIN_PASSWORD: \(problem.detail ?? problem.title)")
                }
            }
        case .behind(let reason), .misconfigured(let reason):
            throw StartupError(reason)
        case .unreachable(let reason):
            logger.warning("database unreachable; /readyz answers 503 until it is back", metadata: ["reason": "\(reason)"])
        }
    }
    return application
}
