import AccordTesting
import Delivery
import Foundation
import PGStore
import PGStoreTesting
import Testing

@Suite("Mail from the outbox")
struct MailDeliveryTests {
    static func delivery(_ h: Harness, port: Int, url: String? = nil) throws -> MailDelivery {
        var smtp = try SMTPConfiguration(url: url ?? "smtp://127.0.0.1:\(port)", from: "Accord <noreply@accord.test>")
        // Patient: on a loaded machine the sink (a Python process) can be slow to answer, and a
        // timed-out conversation is tried again (at least once, by design): a test would see a mail
        // twice.
        smtp.timeout = .seconds(60)
        return MailDelivery(pool: h.pool, client: SMTPClient(configuration: smtp))
    }

    static func outbox(_ h: Harness, _ mails: [(String, String, String)]) async throws {
        let owner = try h.database.pool(asOwner: true, maxConnections: 1)
        defer { Task { await owner.close() } }
        for (recipient, subject, body) in mails {
            try await owner.query("INSERT INTO mail_outbox (recipient, subject, body) VALUES (\(recipient), \(subject), \(body))")
        }
    }

    /// The decoded body of a message as the sink received it.
    static func body(_ data: String) -> String {
        let parts =
            data.components(separatedBy: "\r\n\r\n").count > 1 ? data.components(separatedBy: "\r\n\r\n") : data.components(separatedBy: "\n\n")
        let encoded = parts.dropFirst().joined().filter { !$0.isWhitespace }
        return String(decoding: Data(base64Encoded: encoded) ?? Data(), as: UTF8.self)
    }

    /// What registration puts in the outbox reaches the SMTP server, once, and is marked sent.
    @Test func theOutboxIsSentBySMTP() async throws {
        try await Harness.run { h in
            let sink = try await SMTPSink.start()
            defer { sink.stop() }
            let (_, email) = try await h.register(schac: "ulb.be")
            try await Self.outbox(h, [("ana@ulb.be", "Réunion à Liège", "Première ligne\n.\nDernière ligne")])
            let mail = try Self.delivery(h, port: sink.port)
            #expect(await mail.deliverDue() == 2)
            #expect(await mail.deliverDue() == 0)
            let messages = sink.messages()
            #expect(messages.count == 2)
            let verification = try #require(messages.first { ($0["to"] as? [String]) == [email] })
            let data = try #require(verification["data"] as? String)
            #expect(verification["from"] as? String == "noreply@accord.test")
            #expect(data.contains("Message-ID: <outbox-") && data.contains("From: Accord <noreply@accord.test>"))
            #expect(Self.body(data).contains("/verify-email/"))
            let french = try #require(messages.first { ($0["to"] as? [String]) == ["ana@ulb.be"] }?["data"] as? String)
            #expect(french.contains("Subject: =?UTF-8?B?\(Data("Réunion à Liège".utf8).base64EncodedString())?="))
            #expect(Self.body(french) == "Première ligne\r\n.\r\nDernière ligne")
            #expect(try await h.count("SELECT count(*) FROM mail_outbox WHERE sent_at IS NOT NULL") == 2)
            #expect(mail.statistics.sent == 2)
        }
    }

    /// With the SMTP server down, mail waits (backoff, its error kept) and goes once it is back;
    /// a temporary refusal (451) is tried again; nothing is lost.
    @Test func aServerThatIsDownDelaysMailAndLosesNone() async throws {
        try await Harness.run { h in
            let port = try await SMTPSink.freePort()
            try await Self.outbox(h, [("bo@uva.nl", "Hello", "One")])
            let mail = try Self.delivery(h, port: port)
            #expect(await mail.deliverDue() == 1)
            #expect(await mail.deliverDue() == 0, "not again before its backoff")
            let owner = try h.database.pool(asOwner: true, maxConnections: 1)
            defer { Task { await owner.close() } }
            let row = try await owner.query(
                "SELECT attempts, last_error IS NOT NULL, next_attempt_at >= created_at + interval '30 seconds', sent_at IS NULL FROM mail_outbox"
            ).first((Int, Bool, Bool, Bool).self)
            #expect(row?.0 == 1 && row?.1 == true && row?.2 == true && row?.3 == true)

            // Back, but answering 451 once: tried again later, then sent.
            let sink = try await SMTPSink.start(port: port, failFirst: 1)
            defer { sink.stop() }
            try await owner.query("UPDATE mail_outbox SET next_attempt_at = now()")
            #expect(await mail.deliverDue() == 1)
            #expect(sink.messages().isEmpty)
            #expect(try await owner.query("SELECT last_error FROM mail_outbox").scalar(String.self).contains("451"))
            try await owner.query("UPDATE mail_outbox SET next_attempt_at = now()")
            #expect(await mail.deliverDue() == 1)
            #expect(sink.messages().count == 1)
            #expect(try await h.count("SELECT count(*) FROM mail_outbox WHERE sent_at IS NOT NULL AND attempts = 2") == 1)
            #expect(mail.statistics.failures == 2)
        }
    }

    /// Two instances at once never send the same mail twice.
    @Test func twoInstancesNeverSendTheSameMail() async throws {
        try await Harness.run { h in
            let sink = try await SMTPSink.start()
            defer { sink.stop() }
            try await Self.outbox(h, (1...30).map { ("user\($0)@uva.nl", "Mail \($0)", "Body \($0)") })
            let (a, b) = (try Self.delivery(h, port: sink.port), try Self.delivery(h, port: sink.port))
            async let first = a.deliverDue()
            async let second = b.deliverDue()
            let taken = await first + second
            _ = await a.deliverDue()
            _ = await b.deliverDue()
            let recipients = sink.messages().compactMap { ($0["to"] as? [String])?.first }
            #expect(recipients.count == 30 && Set(recipients).count == 30, "\(taken) taken in the first round")
        }
    }

    /// STARTTLS when the server offers it, and AUTH PLAIN with the URL's credentials.
    @Test func startTLSAndAuthentication() async throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "accord-tls-\(UUID().uuidString.lowercased())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (cert, key) = (directory.appending(path: "cert.pem").path, directory.appending(path: "key.pem").path)
        let openssl = try await ChildProcess.run(
            URL(fileURLWithPath: "/usr/bin/openssl"),
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost",
            ])
        try #require(openssl.status == 0, "\(openssl.stderr)")
        try await Harness.run { h in
            let sink = try await SMTPSink.start(tls: (cert, key), auth: "accord:s3cret pass")
            defer { sink.stop() }
            try await Self.outbox(h, [("bo@uva.nl", "Secure", "Over TLS")])
            let wrong = try Self.delivery(h, port: sink.port, url: "smtp://accord:wrong@localhost:\(sink.port)?ca=\(cert)")
            #expect(await wrong.deliverDue() == 1)
            #expect(sink.messages().isEmpty)
            let owner = try h.database.pool(asOwner: true, maxConnections: 1)
            defer { Task { await owner.close() } }
            // Wrong credentials are the configuration's fault: the mail is kept for another try.
            #expect(try await owner.query("SELECT failed_at IS NULL AND last_error LIKE '%535%' FROM mail_outbox").scalar(Bool.self))
            try await owner.query("UPDATE mail_outbox SET next_attempt_at = now()")
            let right = try Self.delivery(h, port: sink.port, url: "smtp://accord:s3cret%20pass@localhost:\(sink.port)?ca=\(cert)&starttls=required")
            #expect(await right.deliverDue() == 1)
            let message = try #require(sink.messages().first)
            #expect(message["tls"] as? Bool == true && message["authenticated"] as? Bool == true)
        }
    }

    /// ACCORD_SMTP_URL that is not one is refused with one line.
    @Test func badURLsAreRefused() {
        #expect(throws: SMTPError.self) { try SMTPConfiguration(url: "http://mail.example.org", from: "a@b.c") }
        #expect(throws: SMTPError.self) { try SMTPConfiguration(url: "smtp://", from: "a@b.c") }
        #expect(throws: SMTPError.self) { try SMTPConfiguration(url: "smtp://mail.example.org", from: "no address\r\nBcc: x@y.z") }
        let smtps = try? SMTPConfiguration(url: "smtps://u:p@mail.example.org", from: "a@b.c")
        #expect(smtps?.port == 465 && smtps?.security == .implicitTLS && smtps?.username == "u")
    }
}
