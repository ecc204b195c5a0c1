/// Dotted OIDs of the algorithms CSC clients and servers name (hash, key and signature algorithms).
public enum OID {
    public static let sha256 = "2.16.840.1.101.3.4.2.1"
    public static let sha384 = "2.16.840.1.101.3.4.2.2"
    public static let sha512 = "2.16.840.1.101.3.4.2.3"
    public static let ecPublicKey = "1.2.840.10045.2.1"
    public static let ecdsaSHA256 = "1.2.840.10045.4.3.2"
    public static let ecdsaSHA384 = "1.2.840.10045.4.3.3"
    public static let ecdsaSHA512 = "1.2.840.10045.4.3.4"
    public static let rsaEncryption = "1.2.840.113549.1.1.1"
    public static let rsaPSS = "1.2.840.113549.1.1.10"
    public static let sha256WithRSA = "1.2.840.113549.1.1.11"
    public static let sha384WithRSA = "1.2.840.113549.1.1.12"
    public static let sha512WithRSA = "1.2.840.113549.1.1.13"
    public static let p256 = "1.2.840.10045.3.1.7"
    public static let p384 = "1.3.132.0.34"
    public static let mgf1 = "1.2.840.113549.1.1.8"
    public static let sha1 = "1.3.14.3.2.26"
}
