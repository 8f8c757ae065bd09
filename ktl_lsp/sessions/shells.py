"""Interactive shells as sessions, with shell integration injected the way VS Code does it.

The user's files are never changed: bash starts with ``--init-file`` pointing at our script,
zsh with ``ZDOTDIR`` pointing at our directory, fish with ``--init-command``; each script first
sources the user's own start-up files, then adds prompt and command hooks that write OSC 633
marks (A prompt start, B prompt end, E command line, C output start, D;exit command end,
P;Cwd=dir). ``sessions/blocks.py`` reads them back as command blocks. A shell we do not know
runs as it is, a plain session.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

#: Shells we can integrate, by the name of their program.
KNOWN = ("bash", "zsh", "fish")

_BASH = r"""# ktl-lsp shell integration for bash (read as --init-file): the user's own start-up files
# first, then OSC 633 marks around prompts and commands, read back as command blocks.
if [ -n "${KTL_SHELL_LOGIN-}" ]; then
    unset KTL_SHELL_LOGIN
    [ -r /etc/profile ] && . /etc/profile
    for __ktl_f in ~/.bash_profile ~/.bash_login ~/.profile; do
        if [ -r "$__ktl_f" ]; then . "$__ktl_f"; break; fi
    done
    unset __ktl_f
elif [ -r ~/.bashrc ]; then
    . ~/.bashrc
fi
if [ -n "${__ktl_on-}" ]; then return 0; fi
__ktl_on=1
__ktl_r=
__ktl_esc() {
    local s=${1//\\/\\\\}
    s=${s//;/\\x3b}
    if [[ $s == *[[:cntrl:]]* ]]; then
        local out= c i
        for ((i = 0; i < ${#s}; i++)); do
            c=${s:i:1}
            if [[ $c == [[:cntrl:]] ]]; then printf -v c '\\x%02x' "'$c"; fi
            out+=$c
        done
        s=$out
    fi
    __ktl_r=$s
}
__ktl_running=0
__ktl_status=0
# Nothing before the first prompt is a command of the user's (the rest of this file).
__ktl_in_prompt=1
__ktl_hist=
__ktl_prompt_begin() {
    __ktl_status=$?
    __ktl_in_prompt=1
}
__ktl_prompt_end() {
    if [ "$__ktl_running" = 1 ]; then
        printf '\033]633;D;%s\007' "$__ktl_status"
        __ktl_running=0
    fi
    __ktl_esc "$PWD"
    printf '\033]633;P;Cwd=%s\007' "$__ktl_r"
    if [[ $PS1 != *'633;A'* ]]; then
        PS1='\[\033]633;A\007\]'"$PS1"'\[\033]633;B\007\]'
    fi
    __ktl_in_prompt=0
    return "$__ktl_status"
}
__ktl_preexec() {
    if [ "$__ktl_in_prompt" = 1 ] || [ "$__ktl_running" = 1 ] || [ -n "${COMP_LINE-}" ]; then
        return
    fi
    if [ "$BASH_COMMAND" = __ktl_prompt_begin ]; then return; fi
    __ktl_running=1
    local line num
    line=$(HISTTIMEFORMAT= builtin history 1)
    num=${line%%[!0-9 ]*}
    line=${line#"$num"}
    line=${line#\*}
    line=${line#"${line%%[! ]*}"}
    # Not in the history (ignorespace, history off): the command bash is about to run.
    if [ "$num" = "$__ktl_hist" ] && [[ $line != *"$BASH_COMMAND"* ]]; then
        line=$BASH_COMMAND
    fi
    __ktl_hist=$num
    __ktl_esc "$line"
    printf '\033]633;E;%s\007\033]633;C\007' "$__ktl_r"
}
__ktl_third() { __ktl_r=${3-}; }
eval "__ktl_third $(trap -p DEBUG)"
if [ -n "$__ktl_r" ]; then
    trap "__ktl_preexec; $__ktl_r" DEBUG
else
    trap '__ktl_preexec' DEBUG
fi
if [[ "$(declare -p PROMPT_COMMAND 2>/dev/null)" == "declare -a"* ]]; then
    PROMPT_COMMAND=(__ktl_prompt_begin "${PROMPT_COMMAND[@]}" __ktl_prompt_end)
else
    __ktl_r=${PROMPT_COMMAND-}
    while [[ $__ktl_r == *[\;\ $'\n'] ]]; do __ktl_r=${__ktl_r%?}; done
    PROMPT_COMMAND="__ktl_prompt_begin${__ktl_r:+; $__ktl_r}; __ktl_prompt_end"
fi
__ktl_hist=$(HISTTIMEFORMAT= builtin history 1)
__ktl_hist=${__ktl_hist%%[!0-9 ]*}
"""

_ZSH_ENV = r"""# ktl-lsp: the user's .zshenv, from their own ZDOTDIR.
__ktl_zdotdir=$ZDOTDIR
ZDOTDIR=${KTL_USER_ZDOTDIR:-$HOME}
[ -r "$ZDOTDIR/.zshenv" ] && . "$ZDOTDIR/.zshenv"
KTL_USER_ZDOTDIR=$ZDOTDIR
ZDOTDIR=$__ktl_zdotdir
"""

_ZSH_RC = r"""# ktl-lsp shell integration for zsh: the user's .zshrc first, then OSC 633 marks.
ZDOTDIR=${KTL_USER_ZDOTDIR:-$HOME}
unset KTL_USER_ZDOTDIR
[ -r "$ZDOTDIR/.zshrc" ] && . "$ZDOTDIR/.zshrc"
if [[ -z ${__ktl_on-} ]]; then
__ktl_on=1
__ktl_running=0
__ktl_esc() {
    local s=${1//\\/\\\\}
    s=${s//;/\\x3b}
    local out= c i
    for ((i = 1; i <= ${#s}; i++)); do
        c=${s[i]}
        if [[ $c == [[:cntrl:]] ]]; then c=$(printf '\\x%02x' "'$c"); fi
        out+=$c
    done
    REPLY=$out
}
__ktl_precmd() {
    local st=$?
    if [[ $__ktl_running == 1 ]]; then
        printf '\033]633;D;%s\007' "$st"
        __ktl_running=0
    fi
    __ktl_esc "$PWD"
    printf '\033]633;P;Cwd=%s\007' "$REPLY"
    if [[ $PS1 != *'633;A'* ]]; then
        PS1=$'%{\033]633;A\007%}'"$PS1"$'%{\033]633;B\007%}'
    fi
}
__ktl_preexec() {
    __ktl_running=1
    __ktl_esc "$1"
    printf '\033]633;E;%s\007\033]633;C\007' "$REPLY"
}
autoload -Uz add-zsh-hook
add-zsh-hook precmd __ktl_precmd
add-zsh-hook preexec __ktl_preexec
fi
"""

_FISH = r"""# ktl-lsp shell integration for fish (sourced by --init-command after config.fish).
if not set -q __ktl_on
    set -g __ktl_on 1
    function __ktl_esc
        string replace -a '\\' '\\\\' -- $argv[1] | string replace -a ';' '\\x3b' | string collect
    end
    function __ktl_preexec --on-event fish_preexec
        printf '\e]633;E;%s\a\e]633;C\a' (__ktl_esc "$argv[1]")
    end
    function __ktl_postexec --on-event fish_postexec
        printf '\e]633;D;%s\a' $status
    end
    function __ktl_cwd --on-event fish_prompt
        printf '\e]633;P;Cwd=%s\a' (__ktl_esc "$PWD")
    end
    if functions -q fish_prompt
        functions -c fish_prompt __ktl_user_prompt
        function fish_prompt
            printf '\e]633;A\a'
            __ktl_user_prompt
            printf '\e]633;B\a'
        end
    end
end
"""


@dataclass
class ShellLaunch:
    """How to start a shell: its argv and the environment it needs on top of ours."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    #: The name of the shell (bash, zsh, fish, or the program's own name).
    name: str = ""
    #: Marks are injected (False: it runs as a plain session).
    integrated: bool = False


def default_shell() -> str:
    return os.environ.get("SHELL") or "/bin/sh"


def shell_name(program: str) -> str:
    name = os.path.basename(program)
    return name[1:] if name.startswith("-") else name


def integration_dir() -> Path:
    """Our start-up files, written once per content into a directory only the user can read
    (raises OSError when it cannot be written)."""
    digest = hashlib.sha256((_BASH + _ZSH_ENV + _ZSH_RC + _FISH).encode()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    root = base / f"ktl-lsp-shell-{os.getuid()}-{digest}"
    if not (root / "done").exists():
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if root.stat().st_uid != os.getuid() or root.stat().st_mode & 0o077:
            raise OSError(f"{root} belongs to someone else or is open to others")
        for name, text in (
            ("bash.sh", _BASH),
            (".zshenv", _ZSH_ENV),
            (".zshrc", _ZSH_RC),
            ("fish.fish", _FISH),
        ):
            tmp = root / f".{name}.tmp"
            tmp.write_text(text)
            tmp.replace(root / name)
        (root / "done").write_text("")
    return root


def launch(
    program: str | None = None, args: list[str] | None = None, login: bool = False
) -> ShellLaunch:
    """The argv and env that start ``program`` (default ``$SHELL``) interactively with marks.

    ``args``: what the user gave after the program; with any, the shell is not integrated (it
    may be running a script), except none at all."""
    program = program or default_shell()
    name = shell_name(program)
    if args or name not in KNOWN:
        return ShellLaunch([program, *(args or [])], name=name)
    try:
        root = integration_dir()
    except OSError:
        return ShellLaunch([program], name=name)
    env: dict[str, str] = {"KTL_SHELL_INTEGRATION": "1"}
    if name == "bash":
        if login:
            env["KTL_SHELL_LOGIN"] = "1"
        return ShellLaunch([program, "--init-file", str(root / "bash.sh"), "-i"], env, name, True)
    if name == "zsh":
        env["KTL_USER_ZDOTDIR"] = os.environ.get("ZDOTDIR") or os.path.expanduser("~")
        env["ZDOTDIR"] = str(root)
        return ShellLaunch([program, "-i"] + (["-l"] if login else []), env, name, True)
    source = f"source {shlex.quote(str(root / 'fish.fish'))}"
    return ShellLaunch([program, "-i", "--init-command", source], env, name, True)
