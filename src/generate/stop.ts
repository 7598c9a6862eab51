// Stop strings over streamed text: text that might be the start of a stop string is held back
// until it is known not to be, so no stop string (or part of one) ever reaches the user.

export class StopStrings {
  private held = '';
  constructor(private readonly stops: readonly string[]) {}

  /** Feed a piece of text; returns what may be shown, and whether a stop string was met. */
  push(piece: string): { text: string; stopped: boolean } {
    const buf = this.held + piece;
    let cut = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.held = '';
      return { text: buf.slice(0, cut), stopped: true };
    }
    // hold back the longest tail that is a prefix of some stop string
    let keep = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, buf.length); k > keep; k--) {
        if (buf.endsWith(s.slice(0, k))) {
          keep = k;
          break;
        }
      }
    }
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }

  /** At the end of generation: whatever was held back is ordinary text. */
  flush(): string {
    const t = this.held;
    this.held = '';
    return t;
  }
}
