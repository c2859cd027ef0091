import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
import Synchronization
@_spi(WSInternal) import WSCore

/// HTTP/1.1 with the upgrade of room sockets (`GET /v1/rooms/{id}/socket`).
///
/// The same pipeline as HummingbirdWebSocket's `HTTP1WebSocketUpgradeChannel`, with one difference
/// the protocol needs: that channel answers every refused upgrade with an empty 400, while a room
/// socket's refusal is its own status and problem (404, 401, 403, 503). Here a refused upgrade
/// request goes on to the HTTP responder, whose route at the socket's path answers it.
public struct RoomSocketChannel: ServerChildChannel, HTTPChannelHandler {
    public struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        public let channel: any Channel
    }

    enum Negotiated: Sendable {
        case socket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, RoomSocketRoutes.Admission, Logger)
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, Logger)
        /// A refused upgrade: its request (which NIO's upgrade handler does not pass on) is
        /// answered by the plain responder, and the connection ends.
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, Request, Logger)
    }

    /// What an open socket's handler is given besides its streams.
    struct SocketContext: WebSocketContext {
        let logger: Logger
    }

    let plainResponder: Responder
    /// The plain responder, with a redirect for a later request of a connection asking for an
    /// upgrade (see `redirectingUpgrades`).
    public let responder: Responder
    let sockets: RoomSocketRoutes
    let configuration: WebSocketServerConfiguration
    let http1 = HTTP1Channel.Configuration()

    init(responder: @escaping Responder, sockets: RoomSocketRoutes, configuration: WebSocketServerConfiguration) {
        self.plainResponder = responder
        self.responder = Self.redirectingUpgrades(responder)
        self.sockets = sockets
        self.configuration = configuration
    }

    /// The server of room sockets and of every other route (`configuration`'s extensions are not
    /// offered).
    public static func server(_ sockets: RoomSocketRoutes, configuration: WebSocketServerConfiguration) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in RoomSocketChannel(responder: responder, sockets: sockets, configuration: configuration) }
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            var connectionLogger = logger
            connectionLogger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
            let logger = connectionLogger
            let attempt = Attempt()
            let upgrader = NIOTypedWebSocketServerUpgrader<Negotiated>(
                maxFrameSize: configuration.maxFrameSize,
                shouldUpgrade: { channel, head in
                    let promise = channel.eventLoop.makePromise(of: HTTPHeaders?.self)
                    promise.completeWithTask {
                        guard let http = try? HTTPRequest(head, secure: false, splitCookie: false) else { return nil }
                        let request = Request(head: http, body: .init(buffer: ByteBuffer()))
                        guard let admission = await admit(request, logger: logger) else {
                            attempt.refused(request)
                            return nil
                        }
                        attempt.admitted(admission)
                        return HTTPHeaders()
                    }
                    return promise.futureResult
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard let admission = attempt.admission else { throw ChannelError.inappropriateOperationForState }
                        let asyncChannel = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        return .socket(asyncChannel, admission, logger)
                    }
                }
            )
            let upgrading = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandlers(http1.additionalChannelHandlers())
                        try channel.pipeline.syncOperations.addHandler(
                            HTTPConnectionStateHandler(idleTimeout: http1.idleTimeout.map { .init($0) }, logger: logger))
                        let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        if let request = attempt.refusedRequest { return .refused(asyncChannel, request, logger) }
                        return .http(asyncChannel, logger)
                    }
                }
            )
            var pipeline = NIOUpgradableHTTPServerPipelineConfiguration<Negotiated>(upgradeConfiguration: upgrading)
            pipeline.enablePipelining = false  // NIOAsyncChannel pipelines HTTP
            pipeline.enableErrorHandling = false  // Hummingbird handles errors
            pipeline.enableResponseHeaderValidation = false  // HTTPTypes validates headers
            pipeline.decoderConfiguration.maxHeaderFieldSize = http1.httpDecoder.maxHeaderFieldSize
            pipeline.decoderConfiguration.maxHeaderListSize = http1.httpDecoder.maxHeaderListSize
            pipeline.decoderConfiguration.maxHeaderFieldCount = http1.httpDecoder.maxHeaderFieldCount
            let negotiated = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: pipeline)
            return Value(negotiated: negotiated, channel: channel)
        }
    }

    public func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.negotiated.get() {
            case .http(let asyncChannel, let logger):
                await handleHTTP(asyncChannel: asyncChannel, logger: logger)
            case .refused(let asyncChannel, let request, let logger):
                do {
                    try await asyncChannel.executeThenClose { _, outbound in
                        try await plainResponder(request, ResponseWriter(outbound: outbound), asyncChannel.channel)
                    }
                } catch {
                    logger.debug("a refused upgrade's answer failed", metadata: ["error": "\(error)"])
                }
            case .socket(let asyncChannel, let admission, let logger):
                do {
                    _ = try await WebSocketHandler.handle(
                        type: .server,
                        configuration: .init(
                            extensions: [], autoPing: configuration.autoPing, closeTimeout: configuration.closeTimeout,
                            validateUTF8: configuration.validateUTF8, maxFrameSize: configuration.maxFrameSize),
                        asyncChannel: asyncChannel, context: SocketContext(logger: logger)
                    ) { inbound, outbound, context in
                        let channel = asyncChannel.channel
                        try await sockets.serve(
                            admission, inbound: inbound, outbound: outbound, cut: { channel.close(promise: nil) }, logger: context.logger)
                    }
                } catch {
                    logger.debug("room socket ended with an error", metadata: ["error": "\(error)"])
                }
            }
        } catch let error as ChannelError where error == .inputClosed {
            logger.trace("connection closed before a request")
        } catch {
            logger.debug("connection failed before a request", metadata: ["error": "\(error)"])
        }
    }

    /// Runs the socket's checks on an upgrade request: the admission, or nil (the HTTP route at
    /// the same path then answers why).
    func admit(_ request: Request, logger: Logger) async -> RoomSocketRoutes.Admission? {
        let path = request.uri.path.split(separator: "/", omittingEmptySubsequences: false)
        guard path.count == 5, path[0].isEmpty, path[1] == "v1", path[2] == "rooms", path[4] == "socket" else { return nil }
        do {
            return try await sockets.admitUpgrade(request, roomText: String(path[3]))
        } catch {
            logger.debug("room socket refused", metadata: ["reason": "\(error)"])
            return nil
        }
    }

    /// A keep-alive connection's later request asking for an upgrade gets a redirect to its own
    /// URI on a new connection (the upgrade is negotiated only on a connection's first request),
    /// as HummingbirdWebSocket does.
    static func redirectingUpgrades(_ plain: @escaping Responder) -> Responder {
        { request, writer, channel in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else { return try await plain(request, writer, channel) }
            var location = request.uri.path
            if let query = request.uri.query { location += "?\(query)" }
            try await writer.writeResponse(HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: location]))
            throw RedirectedUpgrade()
        }
    }

    struct RedirectedUpgrade: Error {}

    /// A connection's upgrade request, between its checks and the pipeline's change: admitted or
    /// refused.
    final class Attempt: Sendable {
        private let state = Mutex<(admission: RoomSocketRoutes.Admission?, refused: Request?)>((nil, nil))
        func admitted(_ admission: RoomSocketRoutes.Admission) { state.withLock { $0.admission = admission } }
        func refused(_ request: Request) { state.withLock { $0.refused = request } }
        var admission: RoomSocketRoutes.Admission? { state.withLock { $0.admission } }
        var refusedRequest: Request? { state.withLock { $0.refused } }
    }
}
