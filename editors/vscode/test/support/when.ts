/**
 * VS Code's `when` clauses, evaluated as VS Code does for the operators package.json uses:
 * `!`, `&&`, `||`, `==`, `!=`, `=~ /regex/flags`, `in`, `not in`, parentheses, `true`/`false`,
 * quoted strings; a key nobody set is undefined (falsy). Menus are then shown or hidden as in VS
 * Code, instead of tests assuming every item is there.
 */
type Value = unknown;
type Token = { kind: "op" | "word" | "string" | "regex"; text: string };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (["&&", "||", "==", "!=", "=~", "<=", ">="].includes(two)) {
      out.push({ kind: "op", text: src.slice(i, i + 3) === "===" || src.slice(i, i + 3) === "!==" ? src.slice(i, i + 3) : two });
      i += out[out.length - 1].text.length;
      if (two === "=~") {
        while (src[i] === " ") i++;
        const m = /^\/((?:\\.|[^/\\])*)\/([a-z]*)/.exec(src.slice(i));
        if (!m) throw new Error(`when: a regex after =~ in ${src}`);
        out.push({ kind: "regex", text: m[0] });
        i += m[0].length;
      }
      continue;
    }
    if ("!()<>".includes(c)) {
      out.push({ kind: "op", text: c });
      i++;
      continue;
    }
    if (c === "'" || c === '"') {
      const end = src.indexOf(c, i + 1);
      out.push({ kind: "string", text: src.slice(i + 1, end) });
      i = end + 1;
      continue;
    }
    const m = /^[^\s!()=<>&|'"]+/.exec(src.slice(i));
    if (!m) throw new Error(`when: cannot read ${src.slice(i)}`);
    out.push({ kind: "word", text: m[0] });
    i += m[0].length;
  }
  return out;
}

/** Whether `clause` holds in `context` (undefined clause: always). */
export function evaluateWhen(clause: string | undefined, context: ReadonlyMap<string, Value> | Record<string, Value>): boolean {
  if (clause === undefined || clause.trim() === "") return true;
  const get = (k: string): Value => (context instanceof Map ? context.get(k) : (context as Record<string, Value>)[k]);
  const tokens = tokenize(clause);
  let pos = 0;
  const peek = () => tokens[pos];
  const take = () => tokens[pos++];
  const literal = (t: Token): Value => {
    if (t.kind === "string") return t.text;
    if (t.text === "true") return true;
    if (t.text === "false") return false;
    if (/^-?\d+(\.\d+)?$/.test(t.text)) return Number(t.text);
    return t.text; // the right side of == is a literal word in VS Code
  };
  const operand = (): Value => {
    const t = take();
    if (t.kind === "word" && (t.text === "true" || t.text === "false")) return t.text === "true";
    return t.kind === "string" ? t.text : get(t.text);
  };
  const comparison = (): boolean => {
    const t = peek();
    if (t.kind === "op" && t.text === "!") {
      take();
      return !comparison();
    }
    if (t.kind === "op" && t.text === "(") {
      take();
      const v = or();
      take(); // )
      return v;
    }
    const left = operand();
    const next = peek();
    if (next?.kind === "op" && ["==", "===", "!=", "!=="].includes(next.text)) {
      take();
      const right = literal(take());
      const eq = left === right || String(left) === String(right);
      return next.text.startsWith("=") ? eq : !eq;
    }
    if (next?.kind === "op" && next.text === "=~") {
      take();
      const src = take().text;
      const m = /^\/(.*)\/([a-z]*)$/.exec(src)!;
      return typeof left === "string" && new RegExp(m[1], m[2]).test(left);
    }
    if (next?.kind === "word" && (next.text === "in" || next.text === "not")) {
      const negate = take().text === "not";
      if (negate) take(); // in
      const container = get(take().text);
      const has = Array.isArray(container) ? container.includes(left) : container !== null && typeof container === "object" ? Object.prototype.hasOwnProperty.call(container, String(left)) : false;
      return negate ? !has : has;
    }
    return !!left;
  };
  const and = (): boolean => {
    let v = comparison();
    while (peek()?.text === "&&") {
      take();
      const r = comparison();
      v = v && r;
    }
    return v;
  };
  const or = (): boolean => {
    let v = and();
    while (peek()?.text === "||") {
      take();
      const r = and();
      v = v || r;
    }
    return v;
  };
  const result = or();
  if (pos !== tokens.length) throw new Error(`when: cannot read past ${tokens[pos]?.text} in ${clause}`);
  return result;
}
