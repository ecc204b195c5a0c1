import ArgumentParser
import Foundation
import PKCS11
import SigilloBenchSupport
import CSCClient
import CSCProtocol
import SigilloDomain
import SigilloMail
import SigilloPKI
import SigilloSQLite
import SigilloServer

/// The report as Markdown tables (what BENCHMARKS.md shows).
enum BenchTables {
    static func markdown(_ report: BenchReport) -> String {
        var out = "Machine: \(report.machine.cpus) CPU (\(report.machine.cpuModel)), Linux \(report.machine.kernel), \(report.machine.date); "
        out += "load average before \(report.machine.loadBefore), after \(report.machine.loadAfter ?? "?").\n"
        out += "\(report.clients) clients, \(Self.number(report.secondsPerPhase)) s per phase, multisign \(report.multisign).\n\n"
        if let baseline = report.baseline {
            out += "### Raw PKCS#11 loop (C_SignInit + C_Sign, cached handle, same token)\n\n| key | threads | signatures/s | per CPU-second |\n|---|---:|---:|---:|\n"
            for row in baseline { out += "| \(row.algorithm) | \(row.threads) | \(Int(row.signaturesPerSecond)) | \(Int(row.signaturesPerCPUSecond)) |\n" }
            out += "\n"
        }
        if let phases = report.phases {
            out += "### End to end over TLS (keep-alive), server in its own process\n\n"
            out += "| key | phase | hashes/req | sig/s | req/s | p50 ms | p90 ms | p99 ms | max ms | server CPU | client CPU | raw 2-thread sig/s | ratio | CPU efficiency |\n"
            out += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            for phase in phases { out += Self.row(phase) }
            out += "\nflow = authorize (password + OTP) then signHash each iteration (latency of the pair); sign-only = signHash under SADs authorized beforehand. "
            out += "CPU in cores (of \(report.machine.cpus)). Raw 2-thread: the raw loop measured right before the phase; ratio = sig/s over it. "
            out += "CPU efficiency = signatures per server CPU-second over the raw loop's signatures per CPU-second. "
            out += "Failures: \(report.failures), invalid signatures: \(report.invalidSignatures).\n\n"
        }
        if let authorize = report.authorize {
            let phase = authorize.phase
            out += "### authorize alone (Argon2id + HOTP + SAD)\n\n"
            out += "| authorize/s | p50 ms | p99 ms | server CPU | Argon2id verify/s, 1 thread | 2 threads | ratio to 2 threads |\n|---:|---:|---:|---:|---:|---:|---:|\n"
            out += "| \(Int(phase.requestsPerSecond)) | \(Self.number(phase.latency.p50)) | \(Self.number(phase.latency.p99)) | \(Self.number(phase.serverCPU)) | "
            out += "\(Int(authorize.argon2idVerifyPerSecond1Thread)) | \(Int(authorize.argon2idVerifyPerSecond2Threads)) | \(Self.number(authorize.ratio)) |\n\n"
        }
        if let hashing = report.hashing {
            out += "### Client hashing: FileHasher vs openssl dgst -sha256 (page cache warm)\n\n"
            out += "| data | threads | FileHasher MiB/s | openssl MiB/s | ratio |\n|---|---:|---:|---:|---:|\n"
            for row in hashing {
                out += "| \(row.data) | \(row.threads) | \(Int(row.fileHasherMiBPerSecond)) | \(Int(row.opensslMiBPerSecond)) | \(Self.number(row.ratio)) |\n"
            }
            out += "\n"
        }
        if let scaling = report.scaling {
            out += "### Scaling in key pairs (ECDSA P-256, signHash 1 hash/request, 1 client)\n\n"
            out += "| key pairs in token | generation s | server start s | raw C_Sign/s (1 thread) | sig/s | p50 ms | p99 ms | max ms |\n"
            out += "|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            for row in scaling {
                let latency = row.signHash.latency
                out += "| \(row.keyPairs) | \(Self.number(row.generationSeconds)) | \(Self.number(row.serverStartSeconds)) | \(Int(row.rawPerSecond1Thread)) | "
                out += "\(Int(row.signHash.signaturesPerSecond)) | \(Self.number(latency.p50)) | \(Self.number(latency.p99)) | \(Self.number(latency.max)) |\n"
            }
            out += "\n"
        }
        if let scaling = report.wrappedScaling {
            out += "### Scaling in wrapped holder keys (ECDSA P-256, keys chosen uniformly at random, 1 client, Signer)\n\n"
            out += "| wrapped keys | created | creation s | created/s | cache/session × sessions | sig/s | p50 ms | p99 ms | max ms | hit ratio | hit p50 / mean ms | miss p50 / mean ms |\n"
            out += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            for row in scaling {
                out += "| \(row.keys) | \(row.created) | \(Self.number(row.creationSeconds)) | \(Int(row.creationPerSecond)) | \(row.cachePerSession) × \(row.sessions) | "
                out += "\(Int(row.signaturesPerSecond)) | \(Self.number(row.latency.p50)) | \(Self.number(row.latency.p99)) | \(Self.number(row.latency.max)) | "
                out += "\(Self.number(row.hitRatio)) | \(Self.number(row.hit.p50)) / \(Self.number(row.hitMeanMs)) | \(Self.number(row.miss.p50)) / \(Self.number(row.missMeanMs)) |\n"
            }
            if let reference = report.wrappedScalingReference {
                out += "| token object (reference) | – | – | – | – | \(Int(reference.signaturesPerSecond)) | \(Self.number(reference.latency.p50)) | "
                out += "\(Self.number(reference.latency.p99)) | \(Self.number(reference.latency.max)) | – | – | – |\n"
            }
            out += "\n"
        }
        return out
    }

    static func row(_ phase: PhaseResult) -> String {
        let latency = phase.latency
        let ratio = phase.ratioToRaw.map(Self.number) ?? "–"
        return "| \(phase.algorithm) | \(phase.mode.rawValue) | \(phase.hashesPerRequest) | \(Int(phase.signaturesPerSecond)) | \(Int(phase.requestsPerSecond)) | "
            + "\(Self.number(latency.p50)) | \(Self.number(latency.p90)) | \(Self.number(latency.p99)) | \(Self.number(latency.max)) | "
            + "\(Self.number(phase.serverCPU)) | \(Self.number(phase.clientCPU)) | \(phase.rawPerSecond.map { String(Int($0)) } ?? "–") | \(ratio) | "
            + "\(phase.cpuEfficiency.map(Self.number) ?? "–") |\n"
    }

    static func number(_ value: Double) -> String {
        value >= 100 ? String(Int(value.rounded())) : String(format: value >= 10 ? "%.1f" : "%.2f", value)
    }
}
