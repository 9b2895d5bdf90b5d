/**
 * A JSON value in a SharedArrayBuffer, for test shims whose state the test and every PKCS#11
 * worker thread must share (a shim is loaded once per thread). Writers take a spin lock; a reader
 * re-parses only after a write (the version changed).
 */
const LOCK = 0;
const VERSION = 1;
const LENGTH = 2;
const HEADER_BYTES = 3 * 4;

export class SharedJson<T> {
  private readonly header: Int32Array;
  private readonly bytes: Uint8Array;
  private cachedVersion = -1;
  private cached: T | undefined;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.header = new Int32Array(buffer, 0, 3);
    this.bytes = new Uint8Array(buffer, HEADER_BYTES);
  }

  static create<T>(initial: T, capacity = 256 * 1024): SharedJson<T> {
    const shared = new SharedJson<T>(new SharedArrayBuffer(HEADER_BYTES + capacity));
    shared.update(() => initial, true);
    return shared;
  }

  /** The current value: shared with later reads, so change it only through update(). */
  read(): T {
    if (Atomics.load(this.header, VERSION) === this.cachedVersion) return this.cached as T;
    this.lock();
    try {
      return this.load();
    } finally {
      this.unlock();
    }
  }

  /** Changes the value in place (or returns a new one with replace) under the lock. */
  update<R>(change: (state: T) => R, replace = false): R {
    this.lock();
    try {
      const state = replace ? (change(undefined as T) as unknown as T) : this.load();
      const result = replace ? (undefined as R) : change(state);
      const written = new TextEncoder().encodeInto(JSON.stringify(state), this.bytes);
      if (written.read === undefined || written.written >= this.bytes.length) throw new Error('shared shim state is full');
      Atomics.store(this.header, LENGTH, written.written);
      this.cachedVersion = Atomics.add(this.header, VERSION, 1) + 1;
      this.cached = state;
      return result;
    } catch (error) {
      this.cachedVersion = -1; // a change that threw may have half-changed the cached value
      throw error;
    } finally {
      this.unlock();
    }
  }

  private load(): T {
    const version = Atomics.load(this.header, VERSION);
    if (version !== this.cachedVersion) {
      const length = Atomics.load(this.header, LENGTH);
      this.cached = JSON.parse(Buffer.from(this.bytes.subarray(0, length)).toString('utf8')) as T;
      this.cachedVersion = version;
    }
    return this.cached as T;
  }

  private lock(): void {
    while (Atomics.compareExchange(this.header, LOCK, 0, 1) !== 0) Atomics.wait(this.header, LOCK, 1, 1);
  }

  private unlock(): void {
    Atomics.store(this.header, LOCK, 0);
    Atomics.notify(this.header, LOCK, 1);
  }
}
