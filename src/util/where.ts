// "<archive or package>: <name>" for error and warning messages about one entry, built on first use:
// the tar parser and the sanitiser make one per entry, and most entries never need a message.

export class Where {
  private text: string | undefined;
  constructor(
    private readonly what: string,
    private readonly name: string,
    /** How the name is quoted (attacker-controlled: it must come out printable). */
    private readonly quote: (name: string) => string,
  ) {}

  toString(): string {
    return (this.text ??= `${this.what}: ${this.quote(this.name)}`);
  }
}
