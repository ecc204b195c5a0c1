import Foundation

#if SIGILLO_FUZZING
import CLibFuzzer
#endif

/// `sigillo-fuzz TARGET [ARGUMENTS…]`: the libFuzzer targets of the parsers that take outside input (`make fuzz`).
///
/// Built with `-sanitize=fuzzer,address -DSIGILLO_FUZZING` (the Makefile's `fuzz-build`, scratch path `.build/fuzz`)
/// it is libFuzzer: the arguments after the target name are libFuzzer's (`-runs=N`, `-max_total_time=S`, corpus
/// folders…). In a normal build it replays inputs instead: `sigillo-fuzz TARGET FILE|FOLDER…` runs each file through
/// the same function, so a crash found by the fuzzer can be reproduced (and debugged) without the sanitizers.
/// A failed check of a target traps like a crash, so libFuzzer keeps the input that caused it.
@main
struct SigilloFuzz {
    static func main() {
        var arguments = CommandLine.arguments
        // The target comes first; libFuzzer's children (`-fork`, `-jobs`) find it in the environment instead.
        let name: String? =
            if arguments.count > 1, !arguments[1].hasPrefix("-") { arguments.remove(at: 1) } else { ProcessInfo.processInfo.environment["SIGILLO_FUZZ_TARGET"] }
        guard let name, let target = FuzzTargets.all.first(where: { $0.name == name }) else {
            var usage = "usage: sigillo-fuzz TARGET [libFuzzer flags] [corpus folders]\ntargets:\n"
            for target in FuzzTargets.all { usage += "  \(target.name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(target.summary)\n" }
            FileHandle.standardError.write(Data(usage.utf8))
            exit(name == nil ? 2 : 1)
        }
        setenv("SIGILLO_FUZZ_TARGET", target.name, 1)
        let body: FuzzTarget.Body
        do {
            body = try target.prepare()
        } catch {
            FileHandle.standardError.write(Data("sigillo-fuzz \(target.name): set-up failed: \(error)\n".utf8))
            exit(1)
        }
        #if SIGILLO_FUZZING
        exit(Self.fuzz(body, arguments: [arguments[0]] + target.libFuzzerFlags + arguments.dropFirst()))
        #else
        exit(Self.replay(body, name: target.name, paths: Array(arguments.dropFirst())))
        #endif
    }

    #if SIGILLO_FUZZING
    /// The function libFuzzer calls for each input (a C function pointer cannot capture: the body is a global).
    nonisolated(unsafe) static var current: FuzzTarget.Body?

    /// Hands the process to libFuzzer with `arguments` (the target name removed).
    static func fuzz(_ body: @escaping FuzzTarget.Body, arguments: [String]) -> Int32 {
        Self.current = body
        var argc = Int32(arguments.count)
        var pointers: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        return pointers.withUnsafeMutableBufferPointer { buffer in
            var argv = buffer.baseAddress
            return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) }
        }
    }
    #else
    /// Runs every file named (folders: every file in them) through the target; prints how many.
    static func replay(_ body: FuzzTarget.Body, name: String, paths: [String]) -> Int32 {
        var files: [String] = []
        for path in paths {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
                FileHandle.standardError.write(Data("sigillo-fuzz: \(path) does not exist\n".utf8))
                return 1
            }
            if isFolder.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                files += names.sorted().map { (path as NSString).appendingPathComponent($0) }
            } else {
                files.append(path)
            }
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            body(Array(data))
        }
        print("\(name): \(files.count) inputs replayed, no failure (not instrumented: build with `make fuzz` to fuzz)")
        return 0
    }
    #endif
}

#if SIGILLO_FUZZING
/// libFuzzer's entry point. `main` above drives libFuzzer, but compiler-rt's own `main` (pulled in by
/// `-sanitize=fuzzer`, then overridden by SwiftPM's `--defsym main=…`) still needs this symbol to link.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    SigilloFuzz.current?(bytes)
    return 0
}

/// LeakSanitizer suppressions, built in. Swift stores the class reference of a multi-payload enum case (such as
/// `Certificate.PublicKey`'s `.p384` key) with the case number in the pointer's spare bits, which LeakSanitizer's
/// conservative scan does not recognise as a pointer: the CA key the `ocsp-request` set-up keeps for the whole run
/// would be reported as leaked. Only set-up frames are listed; a leak on the path of an input is still reported.
@_cdecl("__lsan_default_suppressions")
func leakSuppressions() -> UnsafePointer<CChar> {
    let suppressions: StaticString = "leak:SigilloPKI20CertificateAuthorityV6create\n"
    return UnsafeRawPointer(suppressions.utf8Start).assumingMemoryBound(to: CChar.self)
}
#endif
