import Foundation

/// Request paths as they may be written down (logs, problem bodies): the secret a path carries —
/// an invitation's or a verification link's token — replaced by `{token}`.
public enum RequestPath {
    /// The collections whose next path segment is a secret token unless it is a UUID (an
    /// invitation's id, in `/v1/institutions/{id}/invitations/{invitationId}`, is no secret).
    static let secretAfter: Set<Substring> = ["invitations", "email-verifications", "password-resets"]

    /// `path` with each secret segment replaced by `{token}`.
    public static func redacted(_ path: String) -> String {
        guard secretAfter.contains(where: { path.contains($0) }) else { return path }
        var segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for index in segments.indices.dropFirst() where secretAfter.contains(segments[index - 1]) {
            if !segments[index].isEmpty, !isUUID(segments[index]) { segments[index] = "{token}" }
        }
        return segments.joined(separator: "/")
    }

    static func isUUID(_ segment: Substring) -> Bool {
        segment.utf8.count == 36 && UUID(uuidString: String(segment)) != nil
    }
}
