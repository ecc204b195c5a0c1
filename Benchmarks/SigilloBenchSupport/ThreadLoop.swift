import Foundation
import Synchronization

/// The benchmarks' measuring harness: the same step run on several threads for a fixed time, counted.
///
/// Used for the raw PKCS#11 sign loop (`RawSignLoop`) and the raw Argon2id verification loop: baselines
/// measured without Swift concurrency, an event loop or the wrapper in the way.
public enum ThreadLoop {
    /// One thread's work: `step` is called until the time is up or it returns false, then `finish` once.
    public typealias Worker = (step: () -> Bool, finish: () -> Void)

    /// Runs `threads` threads for `seconds`. Each thread makes its worker once with `makeWorker` (nil: the thread
    /// gives up and counts nothing), then calls its step until the time is up or the step fails, then its finish.
    /// Blocks the calling thread for `seconds`: call it off Swift's cooperative pool.
    ///
    /// - Returns: completed steps per second, summed over the threads.
    public static func stepsPerSecond(threads: Int, seconds: Double, worker makeWorker: @escaping @Sendable () -> Worker?) -> Double {
        let stop = Atomic<Bool>(false)
        let counts = Mutex<[Int]>([])
        let group = DispatchGroup()
        for _ in 0..<threads {
            group.enter()
            Thread {
                defer { group.leave() }
                guard let worker = makeWorker() else { return }
                var count = 0
                while !stop.load(ordering: .relaxed), worker.step() {
                    count += 1
                }
                worker.finish()
                counts.withLock { $0.append(count) }
            }.start()
        }
        let start = DispatchTime.now()
        Thread.sleep(forTimeInterval: seconds)
        stop.store(true, ordering: .relaxed)
        group.wait()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        return Double(counts.withLock { $0.reduce(0, +) }) / elapsed
    }
}
