import AccordCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Network administration routes under /v1/admin.
public struct AdminController: Sendable {
    let admission: AdmissionService

    public init(admission: AdmissionService) { self.admission = admission }

    public func addRoutes(to routes: RouterGroup<AdminContext>) {
        routes.get("admin/institutions") { request, context in
            let parameters = request.uri.queryParameters
            var filters: [String: String] = [:]
            for name in ["status", "tier", "country", "region", "q", "sort"] { filters[name] = parameters.get(name) }
            return try await admission.list(
                parameters: filters, limit: try Limit.parse(parameters.get("limit"), default: 50), cursor: parameters.get("cursor"),
                caller: context.identity)
        }
        for decision in AdmissionService.Decision.allCases {
            routes.post("admin/institutions/{id}/\(decision.rawValue)") { request, context in
                let id = try context.pathID()
                var reason: String?
                if request.headers[.contentLength].map({ $0 != "0" }) ?? (request.headers[.transferEncoding] != nil) {
                    reason = try await JSONBody.decode(DecisionRequest.self, from: request, context: context).reason
                }
                return try await admission.decide(decision, on: id, reason: reason, caller: context.identity)
            }
        }
        routes.get("admin/institutions/{id}") { _, context in
            try await admission.institution(try context.pathID(), caller: context.identity)
        }
        routes.patch("admin/institutions/{id}") { request, context in
            let body = try await JSONBody.decode(TierRequest.self, from: request, context: context)
            return try await admission.setTier(body.tier, on: try context.pathID(), caller: context.identity)
        }
        routes.get("admin/users") { request, context in
            let parameters = request.uri.queryParameters
            var filters: [String: String] = [:]
            for name in ["q", "institution", "role", "status"] { filters[name] = parameters.get(name) }
            return try await admission.users(
                parameters: filters, limit: try Limit.parse(parameters.get("limit"), default: 50), cursor: parameters.get("cursor"),
                caller: context.identity)
        }
        routes.post("admin/users/{id}/disable") { _, context in
            try await admission.setDisabled(true, user: try context.pathID(), caller: context.identity)
        }
        routes.post("admin/users/{id}/enable") { _, context in
            try await admission.setDisabled(false, user: try context.pathID(), caller: context.identity)
        }
        routes.get("admin/tiers") { _, context in try await admission.tierList(caller: context.identity) }
        routes.post("admin/tiers") { request, context in
            let body = try await JSONBody.decodeStrictly(NewTier.self, from: request, context: context)
            return EditedResponse(status: .created, response: try await admission.addTier(body, caller: context.identity))
        }
        routes.get("admin/network-admins") { _, context in try await admission.networkAdmins(caller: context.identity) }
        routes.post("admin/network-admins") { request, context in
            let body = try await JSONBody.decodeStrictly(NewNetworkAdmin.self, from: request, context: context)
            return EditedResponse(status: .created, response: try await admission.addNetworkAdmin(body, caller: context.identity))
        }
        routes.delete("admin/network-admins/{id}") { _, context -> HTTPResponse.Status in
            try await admission.removeNetworkAdmin(try context.pathID(), caller: context.identity)
            return .noContent
        }
        routes.get("admin/throttles") { request, context in
            let parameters = request.uri.queryParameters
            return try await admission.throttles(
                limit: try Limit.parse(parameters.get("limit"), default: 50), cursor: parameters.get("cursor"), caller: context.identity)
        }
        routes.delete("admin/throttles") { request, context in
            let parameters = request.uri.queryParameters
            let cleared = try await admission.clearThrottles(
                email: parameters.get("email"), address: parameters.get("address"), caller: context.identity)
            return ThrottlesCleared(cleared: cleared)
        }
        routes.get("admin/stats") { request, context -> Response in
            let format = request.uri.queryParameters.get("format") ?? "json"
            guard format == "json" || format == "csv" else { throw Problem.invalid(field: "format", "must be json or csv") }
            let json = try await NetworkStats.json(pool: admission.pool, caller: context.identity)
            let (type, text) = format == "csv" ? ("text/csv; charset=utf-8", try NetworkStats.csv(fromJSON: json)) : ("application/json", json)
            return Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        routes.get("admin/audit-events") { request, context -> Response in
            let parameters = request.uri.queryParameters
            let format = parameters.get("format") ?? "json"
            guard format == "json" || format == "csv" else { throw Problem.invalid(field: "format", "must be json or csv") }
            let filter = try AuditFilter.parse(
                institution: parameters.get("institution"), action: parameters.get("action"), actor: parameters.get("actor"),
                since: parameters.get("since"), until: parameters.get("until"))
            // A CSV export may take up to 10,000 events a page.
            let limit = try Limit.parse(parameters.get("limit"), default: format == "csv" ? 1000 : 50, range: format == "csv" ? 1...10_000 : 1...100)
            let page = try await admission.auditEvents(filter, limit: limit, cursor: parameters.get("cursor"), caller: context.identity)
            guard format == "csv" else { return try page.response(from: request, context: context) }
            var headers: HTTPFields = [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"audit-events.csv\""]
            if let next = page.nextCursor { headers[HTTPField.Name("X-Next-Cursor")!] = next }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: AuditLog.csv(page.items))))
        }
    }
}

extension InstitutionSummary: ResponseEncodable {}
extension AdminUser: ResponseEncodable {}
extension InstitutionDetail: ResponseEncodable {}
extension Tiers.Tier: ResponseEncodable {}
extension NetworkAdmin: ResponseEncodable {}

/// The answer of `DELETE /v1/admin/throttles`: how many counters were cleared.
struct ThrottlesCleared: ResponseEncodable {
    var cleared: Int
}
