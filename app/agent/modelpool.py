"""The runner's model threads: httploop.py hands them predictions so the loop keeps answering /health,
/metrics and /info (and other connections) while a model computes, sleeps or waits on I/O; a model
that releases the GIL (numpy, torch, a socket) overlaps across connections again.

A fixed number of threads (`[serve] model_threads`, DEFAULT_THREADS) take jobs from a SimpleQueue;
each answer goes onto `done` and, unless one is already pending, one byte onto a socketpair the loop
has in its selector, so a burst of answers costs one wake-up. At most QUEUED_PER_THREAD jobs per
thread are in flight (running or queued): the loop holds further predictions in their connections,
unread, rather than queueing without bound. Stdlib only, Python 3.8+."""
import collections
import queue
import socket
import threading

DEFAULT_THREADS = 4  # a waiting model overlaps a few requests; 1 was no faster at 16 connections (bench/README.md)
MAX_THREADS = 64
QUEUED_PER_THREAD = 2  # a thread that finishes finds its next job without a round trip to the loop


class ModelPool:
    """`submit(fn, arg, tag)` on the loop thread; `answers()` there after `fd` is readable yields
    (tag, result or the exception fn raised)."""

    def __init__(self, threads):
        self.limit = threads * QUEUED_PER_THREAD
        self.in_flight = 0  # touched on the loop thread only
        self.jobs = queue.SimpleQueue()
        self.done = collections.deque()
        self.signalled = False
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.writer.setblocking(False)
        self.threads = [threading.Thread(target=self._work, name="berth-model-%d" % i, daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def full(self):
        return self.in_flight >= self.limit

    def submit(self, fn, arg, tag):
        self.in_flight += 1
        self.jobs.put((fn, arg, tag))

    def answers(self):
        try:  # the bytes, then the flag, then `done`: a thread that finds the flag clear sends a byte
            while self.reader.recv(4096):  # this drain has not eaten (the other way round, the flag
                pass  # could be left set with its byte gone, and no answer would wake the loop again)
        except OSError:
            pass
        self.signalled = False
        done = self.done
        while done:
            self.in_flight -= 1
            yield done.popleft()

    def stop(self):
        """Threads end after the jobs already queued (they are daemons: a hung model does not hold exit)."""
        for _ in self.threads:
            self.jobs.put(None)

    def _work(self):
        get, done = self.jobs.get, self.done
        while True:
            job = get()
            if job is None:
                return
            fn, arg, tag = job
            try:
                result = fn(arg)
            except BaseException as e:  # a bug of the caller's fn (the model's own failures are answered as
                result = e  # 500); BaseException too: a thread that ends leaves its job unanswered for ever
            done.append((tag, result))
            if not self.signalled:
                self.signalled = True
                try:
                    self.writer.send(b"x")
                except OSError:
                    pass  # full: a wake-up is pending anyway
