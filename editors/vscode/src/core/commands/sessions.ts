/** Commands on recorded sessions: run, open, input, signals, details, pin, delete, prune, remote agent. */
import { AGENT_TOKEN_SECRET } from "../server";
import { FINAL_STATES, Session, SessionResult } from "../types";
import { CommandContext, pickSession, resultText, UiCommand } from "./context";

/**
 * Shows a session in a terminal. A remote one (agent.url) is attached first: the server mirrors
 * it into a local session (`ktl.session.attach`, detached) that streams like any other.
 */
export async function openSession(ctx: CommandContext, s: Session): Promise<void> {
  let local = s;
  if (s.remote) {
    const r = await ctx.exec<SessionResult>("ktl.session.attach", { sessionId: s.sessionId, detach: true });
    local = await ctx.exec<Session>("ktl.session.get", { sessionId: r.sessionId });
    ctx.ui.refreshSessions();
  }
  ctx.ui.openTerminal({ attach: local, title: `ktl: ${s.title || s.sessionId}${s.remote ? " (remote)" : ""}` });
}

const SIGNALS = ["INT", "TERM", "KILL", "HUP", "EOF"];

export const SESSION_COMMANDS: UiCommand[] = [
  {
    id: "ktl.ui.run",
    title: "Run Command as Session…",
    server: "ktl.run",
    async run(ctx, arg) {
      const command =
        typeof arg === "string" ? arg : await ctx.ui.input("Command to run (through your shell)", { placeHolder: "kubectl get pods -A" });
      if (!command) return;
      ctx.ui.openTerminal({ run: { command, title: command }, title: `ktl: ${command}` });
    },
  },
  {
    id: "ktl.ui.session.open",
    title: "Open Session Terminal…",
    server: "ktl.session.output",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg);
      if (s) await openSession(ctx, s);
    },
  },
  {
    id: "ktl.ui.session.input",
    title: "Send Input to Session…",
    server: "ktl.session.input",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg, { state: "running" });
      if (!s) return;
      const data = await ctx.ui.input("Text to send (a newline is added)");
      if (data === undefined) return;
      await ctx.exec("ktl.session.input", { sessionId: s.sessionId, data: `${data}\r` });
    },
  },
  {
    id: "ktl.ui.session.resize",
    title: "Resize Session…",
    server: "ktl.session.resize",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg, { state: "running" });
      if (!s) return;
      const size = await ctx.ui.input("Columns x rows", { value: "120x30" });
      const m = size?.match(/^\s*(\d+)\s*[x, ]\s*(\d+)\s*$/);
      if (!m) return;
      await ctx.exec("ktl.session.resize", { sessionId: s.sessionId, cols: Number(m[1]), rows: Number(m[2]) });
    },
  },
  {
    id: "ktl.ui.session.signal",
    title: "Send Signal to Session…",
    server: "ktl.session.signal",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg, { state: "running" });
      if (!s) return;
      const sig = await ctx.ui.pick(SIGNALS.map((label) => ({ label })), "Signal");
      if (sig) await ctx.exec("ktl.session.signal", { sessionId: s.sessionId, signal: sig.label });
    },
  },
  {
    id: "ktl.ui.session.cancel",
    title: "Cancel Session…",
    server: "ktl.session.cancel",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg, { state: "running" }, "Pick a running session to cancel");
      if (!s) return;
      const r = await ctx.exec<SessionResult>("ktl.session.cancel", { sessionId: s.sessionId });
      ctx.ui.info(resultText("cancel", r));
      ctx.ui.refreshSessions();
    },
  },
  {
    id: "ktl.ui.session.wait",
    title: "Wait for Session…",
    server: "ktl.session.wait",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg, { state: "running" });
      if (!s) return;
      const r = await ctx.exec<SessionResult>("ktl.session.wait", { sessionId: s.sessionId });
      ctx.ui.info(resultText("wait", r));
    },
  },
  {
    id: "ktl.ui.session.get",
    title: "Show Session Details…",
    server: "ktl.session.get",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg);
      if (!s) return;
      const full = await ctx.exec<Session>("ktl.session.get", { sessionId: s.sessionId });
      await ctx.ui.showDocument(JSON.stringify(full, null, 2), "json");
    },
  },
  {
    id: "ktl.ui.session.output",
    title: "Show Session Output as Text…",
    server: "ktl.session.output",
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg);
      if (!s) return;
      const out = await ctx.exec<{ frames: { type: string; data: string }[] }>("ktl.session.output", {
        sessionId: s.sessionId,
        plain: true,
      });
      const text = out.frames.filter((f) => f.type === "output").map((f) => f.data).join("").replace(/\r\n/g, "\n");
      await ctx.ui.showDocument(text, "log");
    },
  },
  {
    id: "ktl.ui.sessions.list",
    title: "Sessions…",
    server: "ktl.sessions.list",
    async run(ctx) {
      ctx.ui.refreshSessions();
      const s = await pickSession(ctx, undefined);
      if (s) await openSession(ctx, s);
    },
  },
  {
    id: "ktl.ui.session.replay",
    title: "Open Session Replay in Browser…",
    server: "ktl.session.replay",
    gated: true,
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg);
      if (!s) return;
      const r = await ctx.exec<{ url: string }>("ktl.session.replay", { sessionId: s.sessionId });
      ctx.ui.openExternal(r.url);
    },
  },
  {
    id: "ktl.ui.session.pin",
    title: "Pin / Unpin Session…",
    server: "ktl.session.pin",
    gated: true,
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg);
      if (!s) return;
      const r = await ctx.exec<Session>("ktl.session.pin", { sessionId: s.sessionId, pinned: !s.pinned });
      ctx.ui.info(`ktl: ${r.pinned ? "pinned" : "unpinned"} ${s.title || s.sessionId}${r.pinned ? " (kept by retention)" : ""}`);
      ctx.ui.refreshSessions();
    },
  },
  {
    id: "ktl.ui.session.delete",
    title: "Delete Session…",
    server: "ktl.session.delete",
    gated: true,
    async run(ctx, arg) {
      const s = await pickSession(ctx, arg, {}, "Pick a session to delete");
      if (!s) return;
      if (!FINAL_STATES.has(s.state)) return ctx.ui.error(`ktl: ${s.title || s.sessionId} is running; cancel it first`);
      const what = s.kind === "plan" ? "plan session and its node sessions" : "session and its recording";
      if (!(await ctx.ui.confirm(`Delete the ${what} "${s.title || s.sessionId}"?`, "Delete"))) return;
      await ctx.exec("ktl.session.delete", { sessionId: s.sessionId });
      ctx.ui.refreshSessions();
    },
  },
  {
    id: "ktl.ui.sessions.prune",
    title: "Prune Old Sessions",
    server: "ktl.sessions.prune",
    gated: true,
    async run(ctx) {
      const r = await ctx.exec<{ deleted: number }>("ktl.sessions.prune", {});
      ctx.ui.info(`ktl: pruned ${r.deleted} sessions`);
      ctx.ui.refreshSessions();
    },
  },
  {
    id: "ktl.ui.agent.setToken",
    title: "Set Remote Agent Token",
    server: "ktl.sessions.list",
    async run(ctx) {
      const token = await ctx.ui.input("Token of the remote gateway (ktl.agent.url); empty to remove it", { password: true });
      if (token === undefined) return;
      await ctx.ui.storeSecret(AGENT_TOKEN_SECRET, token.trim() || undefined);
      ctx.ui.info(token.trim() ? "ktl: agent token saved in SecretStorage; restarting the server" : "ktl: agent token removed; restarting the server");
      await ctx.ui.restartServer();
    },
  },
];
