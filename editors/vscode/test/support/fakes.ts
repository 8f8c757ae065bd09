import { Memento } from "../../src/core/reopen";
import { Exec } from "../../src/core/types";

export type Call = { command: string; args: Record<string, unknown> };

/** An `Exec` that records each server command and answers from `answers` (else `{}`). */
export function fakeExec(answers: Record<string, (args: Record<string, unknown>) => unknown> = {}): { exec: Exec; calls: Call[] } {
  const calls: Call[] = [];
  const exec = (async (command: string, args: object = {}) => {
    calls.push({ command, args: args as Record<string, unknown> });
    const fn = answers[command];
    return fn ? fn(args as Record<string, unknown>) : {};
  }) as Exec;
  return { exec, calls };
}

/** A workspaceState (vscode.Memento) kept in memory: one per workspace, outliving its windows. */
export function memento(): Memento {
  const values = new Map<string, unknown>();
  return {
    get: <T>(key: string) => values.get(key) as T | undefined,
    update: async (key: string, value: unknown) => {
      if (value === undefined) values.delete(key);
      else values.set(key, value);
    },
  };
}
