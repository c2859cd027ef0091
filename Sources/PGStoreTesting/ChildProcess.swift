import Foundation

/// A program a test runs to its end (a script, `accord`, a validator), waited for without holding
/// a thread of Swift's cooperative pool: its output is read on threads of its own, and its exit
/// comes by its termination handler. (The pool has one thread per core; a test blocked in `waitUntilExit` starves every
/// other test of the run, and on a loaded machine their own time limits then fail them.)
public struct ChildProcess: Sendable {
    public struct Outcome: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        public var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }
    }

    /// Did not end within its time limit (it was terminated).
    public struct TimedOut: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs `executable` with `arguments` (and `environment`, when given, as its whole
    /// environment); terminates it and throws `TimedOut` when it runs past `timeout`.
    public static func run(
        _ executable: URL, _ arguments: [String], environment: [String: String]? = nil, timeout: Duration = .seconds(60)
    ) async throws -> Outcome {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        let (out, err) = (Pipe(), Pipe())
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let (exits, exited) = AsyncStream.makeStream(of: Int32.self, bufferingPolicy: .bufferingNewest(1))
        process.terminationHandler = { exited.yield($0.terminationStatus) }
        try process.run()
        // Both pipes are read while it runs: a program that fills one would otherwise never end.
        let stdout = Task { await readToEnd(out.fileHandleForReading) }
        let stderr = Task { await readToEnd(err.fileHandleForReading) }
        let status = await withTaskGroup(of: Int32?.self) { group in
            group.addTask { await exits.first { _ in true } }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let status else {
            // (Its output is not awaited: a child it started may hold the pipes open.)
            process.terminate()
            let name = ([executable.lastPathComponent] + arguments).joined(separator: " ")
            throw TimedOut(description: "\(name.prefix(300)) did not finish within \(timeout)")
        }
        return Outcome(status: status, stdout: await stdout.value, stderr: await stderr.value)
    }

    /// Everything `handle` gives until its end, read on a thread of its own.
    static func readToEnd(_ handle: FileHandle) async -> String {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)) }.start()
        }
    }
}
