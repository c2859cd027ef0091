import AccordCore
import Foundation

/// A new endpoint, as `POST /v1/institutions/{id}/webhooks` takes it.
public struct WebhookInput: Codable, Sendable {
    public var url: String
    /// Event kinds (`partnership.accepted`), families (`partnership.*`) or `*`.
    public var events: [String]
}

/// An endpoint of an institution. `secret` only in the answers that create or rotate it.
public struct Webhook: Codable, Sendable {
    public var id: UUID
    public var url: String
    public var events: [String]
    /// `active`, or `failing` once a delivery gave up (until one succeeds or the secret is rotated).
    public var status: String
    public var failingSince: String?
    public var createdAt: String
    /// The HMAC-SHA-256 key (base64url), shown once.
    public var secret: String?
}

/// One event's delivery to an endpoint, as its log shows it.
public struct WebhookDeliveryLine: Codable, Sendable {
    public var id: Int
    public var eventId: String
    public var kind: String
    /// `pending`, `delivered` or `failed`.
    public var status: String
    public var attempts: Int
    /// The receiver's last HTTP status, if it answered.
    public var lastStatus: Int?
    public var lastError: String?
    public var nextAttemptAt: String?
    public var deliveredAt: String?
    public var createdAt: String
}
