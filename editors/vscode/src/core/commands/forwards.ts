/** Port-forwards: start one (ports picked or typed) and open a running one in the browser. */
import {
  ClusterItem,
  Forward,
  forwardMessage,
  forwardsOf,
  itemTarget,
  parsePorts,
  parseTargetLine,
  PortForwardResult,
  PortForwardSpec,
  portForwardSpecOf,
  portPickItems,
  targetLabel,
} from "../k8s";
import { Session, SessionResult } from "../types";
import { CommandContext, resultText, sessionArg, UiCommand } from "./context";
import { pickClusterTarget, promptWithWhy, str } from "./targets";

/** `ktl.portForward` arguments given as an object; `ports` may be empty (then asked). */
export function portForwardArg(arg: unknown): PortForwardSpec | undefined {
  if (!arg || typeof arg !== "object") return undefined;
  const a = arg as Record<string, unknown>;
  if (!str(a.pod) && !str(a.service) && !str(a.workload)) return undefined;
  const spec: PortForwardSpec = { ports: Array.isArray(a.ports) ? a.ports.map(String) : [] };
  for (const k of ["pod", "service", "workload", "namespace", "context"] as const) if (str(a[k])) spec[k] = a[k] as string;
  return spec;
}

/** Opens a forward in the browser (asks which when there are several). */
export async function openForward(ctx: CommandContext, forwards: Forward[]): Promise<void> {
  let url: string | undefined = forwards[0]?.url;
  if (forwards.length > 1) {
    const picked = await ctx.ui.pick(
      forwards.map((f) => ({ label: f.url, description: `remote port ${f.remote}` })),
      "Open which port?",
    );
    url = picked?.label;
  }
  if (url) ctx.ui.openExternal(url);
}

export const OPEN_IN_BROWSER = "Open in Browser";
export const STOP = "Stop";

/**
 * Starts a port-forward (`ktl.portForward`: it answers once the ports listen) and says where:
 * "Forwarding http://127.0.0.1:PORT -> service/web:80" with Open in Browser / Stop.
 */
export async function startPortForward(ctx: CommandContext, spec: PortForwardSpec): Promise<PortForwardResult> {
  const label = targetLabel(spec);
  const r = await ctx.exec<PortForwardResult>("ktl.portForward", { ...spec });
  ctx.ui.refreshSessions();
  const forwards = r.forwards ?? [];
  if (forwards.length === 0) {
    ctx.ui.error(resultText(`port-forward ${label}`, r));
    return r;
  }
  const choice = await ctx.ui.ask(forwardMessage(forwards, label), [OPEN_IN_BROWSER, STOP]);
  if (choice === OPEN_IN_BROWSER) {
    await openForward(ctx, forwards);
  } else if (choice === STOP) {
    await ctx.exec<SessionResult>("ktl.session.cancel", { sessionId: r.sessionId });
    ctx.ui.refreshSessions();
  }
  return r;
}

const PORTS_PROMPT = "Ports: LOCAL:REMOTE, or :REMOTE for any free local port";

async function askPorts(ctx: CommandContext, value: string): Promise<string[] | undefined> {
  const text = (await ctx.ui.input(PORTS_PROMPT, { placeHolder: "8080:80 :443", value }))?.trim();
  if (!text) return undefined;
  const parsed = parsePorts(text);
  if (typeof parsed === "string") {
    ctx.ui.error(`ktl port-forward: ${parsed}`);
    return undefined;
  }
  return parsed;
}

/** The ports to forward to a listed resource: `:PORT` of one of its ports, all, or "Other…". */
export async function pickPorts(ctx: CommandContext, item: ClusterItem, label: string): Promise<string[] | undefined> {
  const items = portPickItems(item);
  const first = items[0]?.ports?.[0]?.slice(1);
  if (items.length > 1) {
    const picked = await ctx.ui.pick(items, `Ports to forward to ${label}`);
    if (!picked) return undefined;
    if (picked.ports) return picked.ports;
  }
  return askPorts(ctx, first ? `${first}:${first}` : ":80");
}

export const FORWARD_COMMANDS: UiCommand[] = [
  {
    id: "ktl.ui.portForward",
    title: "Port-forward",
    server: "ktl.portForward",
    gated: true,
    async run(ctx, arg) {
      let spec = portForwardArg(arg);
      if (!spec) {
        const choice = await pickClusterTarget(ctx, "portForward", "Port-forward to");
        if (!choice) return;
        if ("item" in choice) {
          const target = itemTarget(choice.item, choice.answer);
          if (!target) return;
          const ports = await pickPorts(ctx, choice.item, targetLabel(target));
          if (!ports) return;
          spec = { ...target, ports };
        } else {
          const line = await ctx.ui.input(promptWithWhy("Pod, Service or workload to forward to: TARGET [-n NAMESPACE] [PORTS]", choice.why), {
            placeHolder: "svc/web -n shop",
          });
          if (!line) return;
          const words = parseTargetLine(line);
          if (words.error) return ctx.ui.error(`ktl port-forward: ${words.error}`);
          let ports = "";
          if (!words.rest.length) {
            ports = (await ctx.ui.input(PORTS_PROMPT, { placeHolder: "8080:80 :443", value: ":80" }))?.trim() ?? "";
            if (!ports) return;
          }
          const parsed = portForwardSpecOf(line, ports);
          if (typeof parsed === "string") return ctx.ui.error(`ktl port-forward: ${parsed}`);
          spec = parsed;
        }
      } else if (spec.ports.length === 0) {
        const ports = await askPorts(ctx, ":80");
        if (!ports) return;
        spec = { ...spec, ports };
      }
      await startPortForward(ctx, spec);
    },
  },
  {
    id: "ktl.ui.portForward.open",
    title: "Open Port-forward in Browser…",
    server: "ktl.portForward",
    gated: true,
    async run(ctx, arg) {
      let s = sessionArg(arg);
      if (!s) {
        const { sessions } = await ctx.exec<{ sessions: Session[] }>("ktl.sessions.list", { kind: "port-forward", state: "running", limit: 200, remote: false });
        const live = sessions.filter((x) => forwardsOf(x).length > 0);
        if (live.length === 0) return ctx.ui.info("ktl: no running port-forwards");
        const picked = await ctx.ui.pick(
          live.map((x) => ({ label: x.title || x.sessionId, description: forwardsOf(x).map((f) => f.url).join(", "), session: x })),
          "Open which port-forward?",
        );
        if (!picked) return;
        s = picked.session;
      }
      const forwards = forwardsOf(s);
      if (forwards.length === 0) return ctx.ui.error(`ktl: ${s.title || s.sessionId} forwards no ports`);
      await openForward(ctx, forwards);
    },
  },
];
