import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOWebSocket
import Synchronization
import Testing

/// A JSON frame a test received.
struct Frame: @unchecked Sendable, CustomStringConvertible {
    let json: [String: Any]
    var type: String? { json["type"] as? String }
    var seq: Int64? { (json["seq"] as? NSNumber)?.int64Value }
    subscript(_ key: String) -> Any? { json[key] }
    var description: String { "\(json)" }
}

final class FrameBuffer: Sendable {
    let frames = Mutex<[Frame]>([])
    /// Why the connection failed, if it did.
    let failure = Mutex<String?>(nil)
}

/// A room socket as a test drives it: a real WebSocket client over TCP; frames arrive in order,
/// `send` writes one; with `reading: false` it reads nothing (a client that cannot keep up).
final class RoomSocketClient: Sendable {
    /// Frames received and not yet taken by `next`.
    private let buffer = FrameBuffer()
    private let outgoing: AsyncStream<String>.Continuation
    private let task: Task<WebSocketCloseFrame?, any Error>
    private let readGate: AsyncStream<Void>.Continuation

    init(port: Int, path: String, headers: HTTPFields = [:], reading: Bool = true) {
        let (outgoingStream, outgoing) = AsyncStream.makeStream(of: String.self)
        let (gate, gateSink) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        if reading { gateSink.yield() }
        self.outgoing = outgoing
        self.readGate = gateSink
        let buffer = self.buffer
        task = Task {
            do {
                return try await Self.run(port: port, path: path, headers: headers, buffer: buffer, outgoingStream: outgoingStream, gate: gate)
            } catch {
                buffer.failure.withLock { $0 = "\(error)" }
                throw error
            }
        }
    }

    private static func run(
        port: Int, path: String, headers: HTTPFields, buffer: FrameBuffer, outgoingStream: AsyncStream<String>, gate: AsyncStream<Void>
    ) async throws -> WebSocketCloseFrame? {
        try await WebSocketClient.connect(
            url: "ws://127.0.0.1:\(port)\(path)", configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: headers),
            logger: Logger(label: "test.ws")
        ) { inbound, outbound, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await text in outgoingStream { try await outbound.write(.text(text)) }
                }
                for await _ in gate { break }
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message,
                        let json = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
                    else { continue }
                    buffer.frames.withLock { $0.append(Frame(json: json)) }
                }
                group.cancelAll()
            }
        }
    }

    /// Starts reading (for a client made with `reading: false`).
    func startReading() { readGate.yield() }

    func send(_ json: [String: Any]) {
        outgoing.yield(String(decoding: try! JSONSerialization.data(withJSONObject: json), as: UTF8.self))
    }

    func sendRaw(_ text: String) { outgoing.yield(text) }

    /// The next frame (the next of `type`, when given: frames of other types stay for later), or a
    /// failure after `timeout`.
    func next(_ type: String? = nil, timeout: Duration = .seconds(30)) async throws -> Frame {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let frame = buffer.frames.withLock { frames -> Frame? in
                guard let index = frames.firstIndex(where: { type == nil || $0.type == type }) else { return nil }
                return frames.remove(at: index)
            }
            if let frame { return frame }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("no \(type ?? "frame") within \(timeout)\(buffer.failure.withLock { $0 }.map { "; the socket failed: \($0)" } ?? "")")
        throw CancellationError()
    }

    /// The next frame of `type` if one arrives within `timeout`, else nil.
    func poll(_ type: String, timeout: Duration = .milliseconds(500)) async throws -> Frame? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let frame = buffer.frames.withLock { frames -> Frame? in
                guard let index = frames.firstIndex(where: { $0.type == type }) else { return nil }
                return frames.remove(at: index)
            }
            if let frame { return frame }
            try await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    /// Takes every frame of `type` received so far, in order.
    func drain(_ type: String) -> [Frame] {
        buffer.frames.withLock { frames in
            let taken = frames.filter { $0.type == type }
            frames.removeAll { $0.type == type }
            return taken
        }
    }

    /// Why the connection failed (waits for it to end): nil when it opened and closed normally.
    func failed() async throws -> String? {
        _ = try? await task.value
        return buffer.failure.withLock { $0 }
    }

    /// How the socket closed (waits for it, a minute at most).
    func closed() async throws -> WebSocketCloseFrame? {
        let task = self.task
        return try await withThrowingTaskGroup(of: WebSocketCloseFrame??.self) { group in
            group.addTask { .some(try await task.value) }
            group.addTask {
                try await Task.sleep(for: .seconds(60))
                return .none
            }
            let first = try await group.next()!
            group.cancelAll()
            guard let frame = first else {
                Issue.record("the socket did not close within a minute")
                throw CancellationError()
            }
            return frame
        }
    }

    /// Closes from the client's side.
    func close() {
        outgoing.finish()
        task.cancel()
    }
}
