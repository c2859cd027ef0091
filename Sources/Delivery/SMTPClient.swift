import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL

/// Where and how mail is sent: `ACCORD_SMTP_URL`, `smtp://[user:password@]host[:port]` (port 25
/// by default; STARTTLS whenever the server offers it, and required with `?starttls=required`)
/// or `smtps://…` (TLS from the first byte, port 465 by default).
public struct SMTPConfiguration: Sendable, Equatable {
    public enum Security: String, Sendable {
        /// STARTTLS when the server offers it.
        case opportunistic
        /// STARTTLS, and no mail without it.
        case starttlsRequired
        /// TLS from the first byte (smtps).
        case implicitTLS
    }

    public var host: String
    public var port: Int
    public var security: Security
    public var username: String?
    public var password: String?
    /// The sender of every mail (`ACCORD_MAIL_FROM`).
    public var from: String
    /// How long one delivery may take, connection to QUIT.
    public var timeout: Duration = .seconds(30)
    /// Certificates trusted besides the system's (a PEM file), for a server with a private CA.
    public var trustRootsFile: String?

    public init(url text: String, from: String) throws {
        guard let url = URLComponents(string: text), let scheme = url.scheme, let host = url.host, !host.isEmpty else {
            throw SMTPError.configuration("ACCORD_SMTP_URL must look like smtp://user:password@host:587")
        }
        switch scheme {
        case "smtp":
            security = url.queryItems?.first { $0.name == "starttls" }?.value == "required" ? .starttlsRequired : .opportunistic
            port = url.port ?? 25
        case "smtps":
            security = .implicitTLS
            port = url.port ?? 465
        default:
            throw SMTPError.configuration("ACCORD_SMTP_URL must start with smtp:// or smtps://, not \(scheme)://")
        }
        self.host = host
        username = url.user.map { $0.removingPercentEncoding ?? $0 }
        password = url.password.map { $0.removingPercentEncoding ?? $0 }
        trustRootsFile = url.queryItems?.first { $0.name == "ca" }?.value
        guard !from.contains("\r"), !from.contains("\n"), from.contains("@") else {
            throw SMTPError.configuration("ACCORD_MAIL_FROM must be an address such as Accord <noreply@example.org>")
        }
        self.from = from
    }
}

/// Why a mail did not go: `permanent` when the server refused it for good (5xx), else worth a retry.
public enum SMTPError: Error, CustomStringConvertible, Sendable {
    case configuration(String)
    case refused(code: Int, reply: String, permanent: Bool)
    case connection(String)

    public var description: String {
        switch self {
        case .configuration(let text): text
        case .refused(let code, let reply, _): "the SMTP server answered \(code): \(reply)"
        case .connection(let text): text
        }
    }

    public var isPermanent: Bool {
        if case .refused(_, _, let permanent) = self { return permanent }
        return false
    }
}

/// One mail, as the outbox holds it.
public struct Mail: Sendable {
    public var recipient: String
    public var subject: String
    public var body: String
    /// A `Message-ID` that stays the same on every attempt, so that a receiver can drop a
    /// duplicate of a mail sent at least once.
    public var messageID: String

    public init(recipient: String, subject: String, body: String, messageID: String) {
        self.recipient = recipient
        self.subject = subject
        self.body = body
        self.messageID = messageID
    }
}

/// A small SMTP client (RFC 5321) on SwiftNIO, with STARTTLS (RFC 3207) through NIOSSL and AUTH
/// PLAIN: one connection per mail. No kept Swift package sends mail; this is the least that does.
public struct SMTPClient: Sendable {
    public let configuration: SMTPConfiguration

    public init(configuration: SMTPConfiguration) { self.configuration = configuration }

    /// Sends one mail, within `configuration.timeout`.
    public func send(_ mail: Mail) async throws {
        guard Self.isPlainAddress(mail.recipient) else {
            throw SMTPError.refused(code: 501, reply: "not an address: \(mail.recipient.prefix(80))", permanent: true)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.converse(mail) }
            group.addTask {
                try await Task.sleep(for: configuration.timeout)
                throw SMTPError.connection("no answer within \(configuration.timeout)")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    private func tlsHandler() throws -> NIOSSLClientHandler {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let file = configuration.trustRootsFile {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
        }
        return try NIOSSLClientHandler(context: try NIOSSLContext(configuration: tls), serverHostname: configuration.host)
    }

    private func converse(_ mail: Mail) async throws {
        let implicit = configuration.security == .implicitTLS
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .connect(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if implicit { try channel.pipeline.syncOperations.addHandler(try self.tlsHandler()) }
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw SMTPError.connection("cannot connect to \(configuration.host):\(configuration.port): \(error)")
        }
        try await channel.executeThenClose { inbound, outbound in
            var lines = inbound.makeAsyncIterator()
            /// The server's reply: its code and its lines' text (a multi-line reply read whole).
            func reply() async throws -> (code: Int, text: [String]) {
                var text: [String] = []
                while let line = try await lines.next() {
                    let string = String(buffer: line)
                    guard string.count >= 3, let code = Int(string.prefix(3)) else {
                        throw SMTPError.connection("not an SMTP reply: \(string.prefix(80))")
                    }
                    text.append(String(string.dropFirst(4)))
                    if string.count == 3 || string[string.index(string.startIndex, offsetBy: 3)] == " " { return (code, text) }
                }
                throw SMTPError.connection("the SMTP server closed the connection")
            }
            // A 5xx is permanent only for this mail (its recipient, its content); refusals of the
            // session (greeting, TLS, credentials, sender) are the configuration's and are retried.
            func expect(_ accepted: ClosedRange<Int>, after command: String?, aboutTheMail: Bool = false) async throws -> [String] {
                if let command { try await outbound.write(ByteBuffer(string: command + "\r\n")) }
                let (code, text) = try await reply()
                guard accepted.contains(code) else {
                    throw SMTPError.refused(
                        code: code, reply: text.joined(separator: " ").prefix(200).description, permanent: aboutTheMail && code >= 500)
                }
                return text
            }
            _ = try await expect(220...220, after: nil)
            let me = "accord.invalid"
            var capabilities = try await expect(250...250, after: "EHLO \(me)")
            if !implicit, capabilities.contains(where: { $0.uppercased().hasPrefix("STARTTLS") }) {
                _ = try await expect(220...220, after: "STARTTLS")
                try await channel.channel.pipeline.addHandler(try tlsHandler(), position: .first)
                capabilities = try await expect(250...250, after: "EHLO \(me)")
            } else if configuration.security == .starttlsRequired {
                throw SMTPError.refused(code: 530, reply: "the server does not offer STARTTLS, which ACCORD_SMTP_URL requires", permanent: false)
            }
            if let username = configuration.username {
                let secret = Data(([0] + Array(username.utf8) + [0] + Array((configuration.password ?? "").utf8))).base64EncodedString()
                _ = try await expect(235...235, after: "AUTH PLAIN \(secret)")
            }
            _ = try await expect(250...250, after: "MAIL FROM:<\(Self.address(in: configuration.from))>")
            _ = try await expect(250...251, after: "RCPT TO:<\(mail.recipient)>", aboutTheMail: true)
            _ = try await expect(354...354, after: "DATA", aboutTheMail: true)
            _ = try await expect(250...250, after: Self.message(mail, from: configuration.from) + "\r\n.", aboutTheMail: true)
            _ = try? await expect(221...221, after: "QUIT")
        }
    }

    /// The address inside `Name <address>`, or the text itself.
    static func address(in text: String) -> String {
        guard let open = text.lastIndex(of: "<"), let close = text.lastIndex(of: ">"), open < close else { return text }
        return String(text[text.index(after: open)..<close])
    }

    /// An address without anything that could end an SMTP command or a header.
    static func isPlainAddress(_ text: String) -> Bool {
        text.utf8.count <= 254 && text.contains("@") && !text.unicodeScalars.contains { $0.value < 0x21 || $0 == "<" || $0 == ">" }
    }

    /// The message as DATA sends it: headers, then the body in base64 (so that no line is too long
    /// or starts with a dot), CRLF line endings.
    static func message(_ mail: Mail, from: String, date: Date = Date()) -> String {
        let subject = mail.subject.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        let encodedSubject =
            subject.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 })
            ? subject : "=?UTF-8?B?\(Data(subject.utf8).base64EncodedString())?="
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        let body = Data(mail.body.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n").utf8)
            .base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        return [
            "From: \(from)", "To: <\(mail.recipient)>", "Subject: \(encodedSubject)", "Date: \(formatter.string(from: date))",
            "Message-ID: <\(mail.messageID)>", "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64", "", body,
        ].joined(separator: "\r\n")
    }
}
