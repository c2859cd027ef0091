import Foundation

/// The most common passwords of ten or more characters (the minimum length), refused at sign-up.
enum CommonPasswords {
    static let list: Set<String> = [
        "1234567890", "0123456789", "9876543210", "1111111111", "0000000000", "12345678910", "123456789a",
        "a123456789", "1234567890a", "qwertyuiop", "qwertyuiop123", "qwerty123456", "qwerty1234", "1q2w3e4r5t",
        "1q2w3e4r5t6y", "q1w2e3r4t5", "q1w2e3r4t5y6", "1qaz2wsx3edc", "qazwsxedc123", "zaq12wsxcde3",
        "asdfghjkl1", "asdfghjkl123", "zxcvbnm123", "zxcvbnm1234", "password12", "password123", "password1234",
        "password12345", "passw0rd123", "p@ssword123", "p@ssw0rd123", "passwordpassword", "password!123",
        "iloveyou123", "iloveyou12", "letmein123", "welcome123", "welcome1234", "changeme123", "administrator",
        "admin12345", "admin123456", "football123", "baseball123", "superman123", "princess123", "sunshine123",
        "trustno1234", "monkey12345", "dragon12345", "master12345", "starwars123", "computer123", "internet123",
        "1234512345", "1234554321", "123123123123", "123456123456", "123321123321", "1122334455", "11223344556677",
        "abcdefghij", "abcdefghijk", "abc1234567", "abcd123456", "aaaaaaaaaa", "university", "university1",
        "university123", "student123", "students123", "erasmus123", "erasmus2024", "erasmus2025", "erasmus2026",
        "qwerty12345", "987654321a", "michael123", "jennifer123", "whatever123", "shadow12345", "liverpool123",
        "chelsea1234", "arsenal1234", "samsung123", "google12345", "facebook123", "microsoft123",
    ]

    static func contains(_ password: String) -> Bool {
        let lowered = password.lowercased()
        if list.contains(lowered) { return true }
        // One character repeated, or a run of consecutive characters.
        if Set(lowered).count <= 2 { return true }
        let scalars = lowered.unicodeScalars.map(\.value)
        let ascending = zip(scalars, scalars.dropFirst()).allSatisfy { $1 == $0 + 1 }
        let descending = zip(scalars, scalars.dropFirst()).allSatisfy { $1 + 1 == $0 }
        return ascending || descending
    }
}
