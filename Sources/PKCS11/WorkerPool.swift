import Foundation

/// A fixed pool of threads, one per PKCS#11 session. Blocking token calls run here, never on Swift's
/// cooperative pool or an event loop.
///
/// Each worker owns its session for its whole life, so a session never runs two operations at once and the
/// hot path needs no session check-out. Jobs wait in one FIFO queue guarded by a condition variable.
///
/// `@unchecked Sendable`: `jobs` and `stopping` are only touched with `condition` locked; `workers` is set
/// once in `start` before any job is submitted and only read afterwards.
final class WorkerPool: @unchecked Sendable {
    typealias Job = (Worker) -> Void

    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var head = 0
    private var stopping = false
    private var running = 0
    private(set) var workers: [Worker] = []

    var count: Int { self.workers.count }

    /// Jobs waiting for a free worker (not those running).
    var queued: Int {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.jobs.count - self.head
    }

    /// Starts one thread per worker. Each worker already holds its open, logged-in session.
    func start(workers: [Worker], name: String) {
        self.workers = workers
        self.running = workers.count
        for worker in workers {
            let thread = Thread { [self] in self.loop(worker) }
            thread.name = "\(name)-\(worker.index)"
            thread.start()
        }
    }

    /// Queues a job for the next free worker.
    func submit(_ job: @escaping Job) {
        self.condition.lock()
        self.jobs.append(job)
        self.condition.signal()
        self.condition.unlock()
    }

    /// Queues `count` jobs at once (a batch fanned out to several workers).
    func submit(_ job: @escaping Job, count: Int) {
        self.condition.lock()
        for _ in 0..<count { self.jobs.append(job) }
        if count == 1 { self.condition.signal() } else { self.condition.broadcast() }
        self.condition.unlock()
    }

    /// Lets queued jobs finish, then stops the threads and closes their sessions. Blocks until done.
    func stop() {
        self.condition.lock()
        self.stopping = true
        self.condition.broadcast()
        while self.running > 0 { self.condition.wait() }
        self.condition.unlock()
    }

    private func loop(_ worker: Worker) {
        while true {
            self.condition.lock()
            while self.head == self.jobs.count && !self.stopping { self.condition.wait() }
            if self.head == self.jobs.count {
                // Close the session before counting this worker out: `stop()` returns only when no thread is
                // still inside the module (a caller may exit the process right after).
                self.condition.unlock()
                worker.module.withCalls { worker.closeSession() }
                self.condition.lock()
                self.running -= 1
                self.condition.broadcast()
                self.condition.unlock()
                return
            }
            let job = self.jobs[self.head]
            self.head += 1
            if self.head == self.jobs.count {
                self.jobs.removeAll(keepingCapacity: true)
                self.head = 0
            } else if self.head > 1024 {
                self.jobs.removeFirst(self.head)
                self.head = 0
            }
            self.condition.unlock()
            // A job may call the module: no re-initialisation (`PKCS11Module.reinitialize`) finalises it meanwhile.
            worker.module.withCalls { job(worker) }
        }
    }
}
