import Foundation
import PGStore
import PGStoreTesting
import Synchronization
import Testing

@Suite("LISTEN/NOTIFY")
struct ListenerTests {
    @Test func receivesNotificationsAndSurvivesATerminatedConnection() async throws {
        let url = try TestDatabase.environmentURL("ACCORD_MIGRATION_DATABASE_URL")
        let listener = PGListener(configuration: try PGConfiguration(url: url, connectTimeoutSeconds: 30))
        let pool = try ownerPool(maxConnections: 2)
        defer {
            listener.shutdown()
            Task { await pool.close() }
        }
        let channel = "accord_test_\(UUID().uuidString.lowercased().prefix(8).lowercased())"
        let stream = try await listener.notifications(channel: channel)
        let inbox = Inbox()
        let consumer = Task { for await notification in stream { inbox.add(notification.payload) } }
        defer { consumer.cancel() }

        // Sent from another connection, with a payload that would break spliced SQL.
        try await pool.notify(channel: channel, payload: "before 'quoted'; --")
        try await withTimeout(5) { while inbox.payloads.isEmpty { try await Task.sleep(for: .milliseconds(10)) } }
        #expect(inbox.payloads == ["before 'quoted'; --"])

        let pid = try #require(listener.backendPID)
        #expect(try await pool.query("SELECT pg_terminate_backend(\(pid), 5000)").scalar(Bool.self))

        // Notifications sent while the listener reconnects are lost (PostgreSQL keeps none), so
        // keep sending until one arrives over the new connection.
        try await withTimeout(20) {
            var attempt = 0
            while !inbox.payloads.contains(where: { $0.hasPrefix("after") }) {
                attempt += 1
                try await pool.notify(channel: channel, payload: "after \(attempt)")
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(listener.reconnectCount >= 1)
        #expect(listener.backendPID != pid)
    }

    @Test func subscriptionEndsAndUnlistens() async throws {
        let url = try TestDatabase.environmentURL("ACCORD_MIGRATION_DATABASE_URL")
        let listener = PGListener(configuration: try PGConfiguration(url: url, connectTimeoutSeconds: 30))
        defer { listener.shutdown() }
        let stream = try await listener.notifications(channel: "accord_unlisten_test")
        let consumer = Task { for await _ in stream {} }
        consumer.cancel()
        _ = await consumer.value
        let pid = try #require(listener.backendPID)
        let pool = try ownerPool(maxConnections: 1)
        defer { Task { await pool.close() } }
        // The listener's connection stops listening once its last subscriber is gone.
        try await withTimeout(5) {
            while true {
                let channels = try await pool.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = \(pid) AND query ILIKE 'UNLISTEN%'"
                ).scalar(Int.self)
                if channels == 1 { return }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        await #expect(throws: PGError.self) { try await listener.notifications(channel: "") }
    }
}

final class Inbox: Sendable {
    private let items = Mutex<[String]>([])
    func add(_ payload: String) { items.withLock { $0.append(payload) } }
    var payloads: [String] { items.withLock { $0 } }
}
