/** Helm renders (`ktl.helm.render`, its "Render" lenses): the rendered manifests opened read-only. */
import { CommandContext } from "./context";

/** `ktl.helm.render`'s answer (docs/protocol.md section 14). */
export interface RenderAnswer {
  chart: string;
  label: string;
  manifests: Record<string, string>;
  cutShort: boolean;
  error: { message: string; template?: string; line?: number } | null;
}

/** The URI scheme of rendered manifests (a read-only virtual document). */
export const RENDER_SCHEME = "ktl-render";

/** One YAML stream as `helm template` prints it, the error and a cut-short render as comments first. */
export function renderedText(a: RenderAnswer): string {
  const head: string[] = [`# ${a.chart} rendered with ${a.label}`];
  if (a.error) {
    const where = a.error.template !== undefined && a.error.line !== undefined ? `${a.error.template}:${a.error.line + 1}: ` : "";
    head.push(`# error: ${where}${a.error.message.replace(/\n/g, " ")}`);
  }
  if (a.cutShort) head.push("# the render was cut short: only part of it is shown");
  const docs = Object.entries(a.manifests).map(([name, text]) => `---\n# Source: ${name}\n${text.replace(/\n*$/, "")}\n`);
  return `${head.join("\n")}\n${docs.join("")}`;
}

/** The read-only document's name: `<chart dir name> (<label>).yaml`. */
export function renderedName(a: RenderAnswer): string {
  const base = a.chart.split(/[\\/]/).filter(Boolean).pop() ?? "chart";
  return `${base} (${a.label.replace(/[\\/]/g, "_")}).yaml`;
}

/** A Render lens: the server renders, the editor shows the manifests read-only. */
export async function openRender(
  ctx: CommandContext,
  args: unknown[],
  next: (command: string, args: unknown[]) => Promise<unknown>,
): Promise<RenderAnswer | undefined> {
  const answer = (await next("ktl.helm.render", args)) as RenderAnswer | undefined;
  if (!answer || typeof answer !== "object" || !("manifests" in answer)) return answer;
  await ctx.ui.showReadOnly(renderedName(answer), renderedText(answer), "yaml");
  return answer;
}
