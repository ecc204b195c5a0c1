import Foundation

/// The CAdES baseline levels `sigillo sign` writes (ETSI EN 319 122-1 §4).
public enum CAdESLevel: String, CaseIterable, Comparable, Hashable, Sendable {
    /// B-B: the signed attributes and the signature.
    case b = "B-B"
    /// B-T: B-B with a signature-time-stamp (`id-aa-signatureTimeStampToken`) from a TSA.
    case t = "B-T"
    /// B-LT: B-T with the certificate chain and the signer certificate's revocation data (CRL, OCSP response) in
    /// `SignedData`, so that the signature validates offline.
    case lt = "B-LT"

    /// `B-B`, `b-t`, `BLT`…: case and the dash do not matter.
    public init?(name: String) {
        let key = name.uppercased().replacingOccurrences(of: "-", with: "")
        guard let level = Self.allCases.first(where: { $0.rawValue.replacingOccurrences(of: "-", with: "") == key }) else { return nil }
        self = level
    }

    public static func < (lhs: CAdESLevel, rhs: CAdESLevel) -> Bool {
        Self.allCases.firstIndex(of: lhs)! < Self.allCases.firstIndex(of: rhs)!
    }
}
