import Foundation
import NIOCore
import NIOPosix
import PGStoreTesting
import Testing

/// A real SMTP server for tests: aiosmtpd (Tests/Support/smtp-sink.py, from the virtual
/// environment `Deploy/local/install --test` makes), which keeps every message it accepts.
public final class SMTPSink: @unchecked Sendable {
    public let port: Int
    let process: Process
    let input: Pipe
    let file: URL

    /// The checkout's root (above Schema/).
    static var root: URL { TestDatabase.schemaDirectory.deletingLastPathComponent() }

    /// A port no one listens on now.
    public static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    /// Starts a sink (on `port`, or a free one): `failFirst` messages are answered 451; with `tls`
    /// (certificate and key files) it offers and requires STARTTLS; with `auth` ("user:password")
    /// it requires AUTH.
    public static func start(
        port: Int? = nil, failFirst: Int = 0, tls: (cert: String, key: String)? = nil, auth: String? = nil
    ) async throws
        -> SMTPSink
    {
        let python = root.appending(path: ".accord/venv/bin/python")
        try #require(
            FileManager.default.isExecutableFile(atPath: python.path), "no \(python.path): run Deploy/local/install --test (make test does)")
        let port = try await { if let port { return port } else { return try await freePort() } }()
        let file = FileManager.default.temporaryDirectory.appending(path: "accord-smtp-\(UUID().uuidString.lowercased()).jsonl")
        let process = Process()
        process.executableURL = python
        var arguments = [
            root.appending(path: "Tests/Support/smtp-sink.py").path, "--port", "\(port)", "--out", file.path, "--fail-first", "\(failFirst)",
        ]
        if let tls { arguments += ["--tls-cert", tls.cert, "--tls-key", tls.key] }
        if let auth { arguments += ["--auth", auth] }
        process.arguments = arguments
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        // Read on a thread of its own: Python can take seconds to start on a loaded machine.
        let ready = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: output.fileHandleForReading.availableData) }.start()
        }
        try #require(String(decoding: ready, as: UTF8.self).hasPrefix("ready"), "the SMTP sink did not start")
        return SMTPSink(port: port, process: process, input: input, file: file)
    }

    init(port: Int, process: Process, input: Pipe, file: URL) {
        self.port = port
        self.process = process
        self.input = input
        self.file = file
    }

    /// The messages accepted so far: `from`, `to`, `data` (the message as sent), `tls`,
    /// `authenticated`.
    public func messages() -> [[String: Any]] {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    public func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: file)
    }
}
