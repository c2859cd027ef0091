import AccordCore
import Foundation
import HTTPTypes
import Hummingbird

/// Routes of an institution's webhooks under /v1/institutions/{id}/webhooks (its admins only).
public struct WebhooksController: Sendable {
    let webhooks: WebhookService

    public init(webhooks: WebhookService) { self.webhooks = webhooks }

    public func addRoutes(to routes: RouterGroup<AuthenticatedContext>) {
        routes.post("institutions/{id}/webhooks") { request, context -> EditedResponse<Webhook> in
            let input = try await JSONBody.decodeStrictly(WebhookInput.self, from: request, context: context)
            let webhook = try await webhooks.create(input, for: try context.pathID(), caller: context.identity)
            return EditedResponse(status: .created, headers: [.cacheControl: "no-store"], response: webhook)
        }
        routes.get("institutions/{id}/webhooks") { _, context in
            try await webhooks.list(for: try context.pathID(), caller: context.identity)
        }
        routes.delete("institutions/{id}/webhooks/{webhook}") { _, context -> HTTPResponse.Status in
            try await webhooks.delete(try context.pathID("webhook"), for: try context.pathID(), caller: context.identity)
            return .noContent
        }
        routes.post("institutions/{id}/webhooks/{webhook}/rotate-secret") { _, context -> EditedResponse<Webhook> in
            EditedResponse(
                headers: [.cacheControl: "no-store"],
                response: try await webhooks.rotateSecret(try context.pathID("webhook"), for: try context.pathID(), caller: context.identity))
        }
        routes.get("institutions/{id}/webhooks/{webhook}/deliveries") { request, context in
            let parameters = request.uri.queryParameters
            return try await webhooks.deliveries(
                of: try context.pathID("webhook"), for: try context.pathID(), limit: try Limit.parse(parameters.get("limit"), default: 50),
                cursor: parameters.get("cursor"), caller: context.identity)
        }
    }
}

extension Webhook: ResponseEncodable {}
