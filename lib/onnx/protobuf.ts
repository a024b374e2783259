/**
 * A minimal protocol-buffers wire-format writer: just the field kinds an ONNX file needs
 * (varint, 32-bit float, length-delimited bytes/strings/sub-messages).
 *
 * Why not a protobuf library: an ONNX model is a handful of message types, and the writer has
 * one property generic libraries lack — large byte fields (weights) are kept *by reference*,
 * never copied into one contiguous buffer, so a 1 GB model can be streamed to disk chunk by
 * chunk with the weights read once. A message is therefore a list of chunks plus its length.
 *
 * Wire format (protobuf encoding spec): a field is a key varint `(field_number << 3) | wire_type`
 * followed by its payload; wire type 0 = varint, 2 = length-delimited (varint length + bytes),
 * 5 = fixed 32-bit little-endian. Varints are little-endian base-128 with the high bit as the
 * continuation flag; a negative int64 is encoded as its 64-bit two's complement (10 bytes).
 */

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

/** Small fields are gathered in a scratch buffer (grown up to this size) before they become a chunk; weights bypass it. */
const SCRATCH_MAX_BYTES = 4096;

export class ProtoMessage {
  /** The encoded bytes, in order: small fields copied, large byte fields by reference. */
  readonly chunks: Uint8Array[] = [];
  private scratch = new Uint8Array(64);
  private used = 0;
  private flushedLength = 0;

  /** Total encoded length in bytes. */
  get length(): number {
    return this.flushedLength + this.used;
  }

  /** Ends the message: the pending small fields become a chunk. Returns this for chaining. */
  finish(): this {
    this.flush();
    return this;
  }

  varint(field: number, value: number | bigint): this {
    this.key(field, WIRE_VARINT);
    this.rawVarint(value);
    return this;
  }

  bool(field: number, value: boolean): this {
    return this.varint(field, value ? 1 : 0);
  }

  float(field: number, value: number): this {
    this.key(field, WIRE_FIXED32);
    this.reserve(4);
    new DataView(this.scratch.buffer, this.scratch.byteOffset).setFloat32(this.used, value, true);
    this.used += 4;
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  /** A length-delimited field. Large payloads are kept by reference (do not mutate them after). */
  bytes(field: number, value: Uint8Array): this {
    this.key(field, WIRE_LENGTH_DELIMITED);
    this.rawVarint(value.byteLength);
    this.append(value);
    return this;
  }

  /** An embedded message: its chunks join this message's list (no copy). */
  message(field: number, value: ProtoMessage): this {
    value.finish();
    this.key(field, WIRE_LENGTH_DELIMITED);
    this.rawVarint(value.length);
    this.flush();
    for (const c of value.chunks) this.chunks.push(c);
    this.flushedLength += value.length;
    return this;
  }

  private key(field: number, wire: number): void {
    this.rawVarint(field * 8 + wire);
  }

  private rawVarint(value: number | bigint): void {
    this.reserve(10);
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
      let v = value;
      while (v >= 0x80) {
        this.scratch[this.used++] = (v % 0x80) | 0x80;
        v = Math.floor(v / 0x80);
      }
      this.scratch[this.used++] = v;
      return;
    }
    if (typeof value === 'number' && !Number.isSafeInteger(value))
      throw new RangeError(`protobuf varint: ${value} is not an exact integer`);
    // Negative or bigint: encode the 64-bit two's complement.
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.scratch[this.used++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.scratch[this.used++] = Number(v);
  }

  private reserve(bytes: number): void {
    if (this.used + bytes <= this.scratch.length) return;
    if (this.scratch.length < SCRATCH_MAX_BYTES) {
      // Most messages (nodes, attributes) are tiny: start small, grow by doubling.
      const grown = new Uint8Array(Math.min(SCRATCH_MAX_BYTES, Math.max(2 * this.scratch.length, this.used + bytes)));
      grown.set(this.scratch.subarray(0, this.used));
      this.scratch = grown;
      if (this.used + bytes <= this.scratch.length) return;
    }
    this.flush();
  }

  private append(data: Uint8Array): void {
    if (data.byteLength <= 256) {
      this.reserve(data.byteLength); // small: copied (names, attributes)
      this.scratch.set(data, this.used);
      this.used += data.byteLength;
      return;
    }
    this.flush();
    this.chunks.push(data);
    this.flushedLength += data.byteLength;
  }

  private flush(): void {
    if (this.used === 0) return;
    // A copy of exactly the used bytes, so the scratch can be reused.
    this.chunks.push(this.scratch.slice(0, this.used));
    this.flushedLength += this.used;
    this.used = 0;
  }
}
