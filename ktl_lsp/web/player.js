/*
 * ktl-lsp session player: replays a recorded terminal session with xterm.js.
 *
 * Used by the self-contained HTML export (ktl_lsp/sessions/export/html.py inlines this file,
 * xterm.js and the CSS) and meant for the browser replay UI. Needs the global `Terminal`
 * (xterm.js); fetches nothing.
 *
 *   const player = KtlPlayer.mount(element, {session, frames, idleLimitMs, speed, start});
 *
 * `session` is the LSP session shape (sessionId, title, state, meta, tags, ...).
 * `frames` are compact arrays, in order:
 *   [seq, tMs, "o", base64]    terminal output bytes
 *   [seq, tMs, "r", "COLSxROWS"] resize
 *   [seq, tMs, "m", label]     marker (state change, signal, ...): a tick on the timeline
 *   [seq, tMs, "t", label]     trimmed range: shown in the terminal as a dim line
 * tMs is milliseconds since the session started. The HTML export embeds the output as the
 * session's NDJSON lines: KtlPlayer.ndjsonFrames makes these arrays of them.
 *
 * Idle gaps longer than `idleLimitMs` (default 2000) are shortened to it, as asciinema does;
 * the timeline shows that play time. Options from the page address: #t=SECONDS or #t=end,
 * #play, #speed=N. State for tests: element.dataset.state is "paused", "playing" or "ended"
 * once everything up to the position has been written; window.ktlPlayer is the last player.
 */
(function (global) {
  "use strict";

  var SPEEDS = [0.5, 1, 2, 4, 8, 16];
  // CSI, OSC (BEL or ST), other two-byte escapes, and C0 controls except \n and \t.
  var ANSI = /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[P^_][^\x1b]*\x1b\\|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]/g;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "cls") node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function b64bytes(s) {
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function fmtTime(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(r).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }

  function fmtDate(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
  }

  function parseSize(s) {
    var m = /^(\d+)x(\d+)$/.exec(s || "");
    return m ? [parseInt(m[1], 10), parseInt(m[2], 10)] : null;
  }

  // Where to start writing so the screen at a frame is right without everything before it: the
  // backwards scan of ktl_lsp/sessions/timeline.py (find_start; see why there), which the
  // replay UI gets from the gateway's /seek. A reset, a full clear or a switch to the alternate
  // screen wipes it; else 2 * rows + SCROLLBACK_LINES newlines with no cursor addressing after
  // them scroll every older line away; an alternate-screen segment that ended is skipped whole;
  // past BUDGET bytes it gives up where it is.
  var SCROLLBACK_LINES = 100, SEEK_BUDGET = 1 << 20;
  var SEEK_TOKENS = /\x1bc|\x1b\[\?(?:1049|1047|47)[hl]|\x1b\[2J|\x1b\[[0-9;]*[HfAFdrLMST]|\x1b[M78]|\x1b\[[su]|\n/g;

  function findStart(frames, last, rows) {
    var need = 2 * rows + SCROLLBACK_LINES, newlines = 0, addressed = false, inAlt = false;
    var scanned = 0;
    for (var i = last; i >= 0; i--) {
      var f = frames[i];
      if (f[2] !== "o") continue;
      var bin = atob(f[3]); // a byte per character: the scan is on bytes, as the store's
      scanned += bin.length;
      var toks = bin.match(SEEK_TOKENS) || [];
      for (var k = toks.length - 1; k >= 0; k--) {
        var tok = toks[k];
        if (tok === "\n") {
          if (!addressed && !inAlt && ++newlines >= need) return i;
          continue;
        }
        if (tok.indexOf("\x1b[?") === 0) {
          if (tok.charAt(tok.length - 1) === "l") inAlt = true;
          else if (inAlt) inAlt = false;
          else return i;
          continue;
        }
        if (inAlt) continue;
        if (tok === "\x1bc" || tok === "\x1b[2J") return i;
        addressed = true;
      }
      if (scanned >= SEEK_BUDGET) return i;
    }
    return 0;
  }

  function hashOptions() {
    var out = {};
    (global.location && global.location.hash || "").replace(/^#/, "").split("&").forEach(function (part) {
      if (!part) return;
      var i = part.indexOf("=");
      out[i < 0 ? part : part.slice(0, i)] = i < 0 ? "" : decodeURIComponent(part.slice(i + 1));
    });
    return out;
  }

  function KtlPlayer(root, opts) {
    this.root = root;
    this.session = opts.session || {};
    this.idleLimit = opts.idleLimitMs === undefined ? 2000 : opts.idleLimitMs;
    this.speed = opts.speed || 1;
    this.frames = [];
    this.playTimes = [];
    this.markers = [];
    this.duration = 0;
    this.index = 0; // frames[0..index) are written
    this.position = 0; // play time (ms)
    this.playing = false;
    this.timer = null;
    this.pending = 0; // writes not yet parsed by xterm
    this.textIndex = null;
    this.matches = [];
    this.matchAt = -1;
    this.initialSize = opts.size || [80, 24]; // until the first resize frame says otherwise
    this.sized = false;
    this._build();
    this.append(opts.frames || []);
    this.term = new global.Terminal({
      cols: this.initialSize[0],
      rows: this.initialSize[1],
      convertEol: false,
      disableStdin: true,
      cursorBlink: false,
      scrollback: opts.scrollback || 5000,
      fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace",
      fontSize: 14,
      theme: { background: "#101418", foreground: "#d6dde6" },
      allowProposedApi: true,
    });
    this.term.open(this.ui.screen);
    this._renderMeta();
    this._updateUi();
  }

  // The command line a session shows: meta.command, then the meta.args it does not already end
  // with. The rule is command_line() in ktl_lsp/sessions/model.py (see why there); ui.js uses
  // this one too.
  KtlPlayer.commandLine = function (meta) {
    var command = String((meta && meta.command) || "").trim();
    var args = meta && Array.isArray(meta.args) ? meta.args.map(String) : [];
    for (var k = args.length; k > 0; k--) {
      var head = args.slice(0, k).join(" ");
      if (command === head || command.slice(-(head.length + 1)) === " " + head) {
        args = args.slice(k);
        break;
      }
    }
    return [command].concat(args).filter(Boolean).join(" ");
  };

  // Frames from the HTML export: output from NDJSON lines (MirrorFrames: "sequence",
  // "received_unix_nano" as strings, "raw" base64; lines without "raw" hold no output), the
  // rest from `marks` (compact arrays as above), merged by seq. Times count from `startNs`
  // (a string: nanoseconds since the epoch are beyond a double's exact integers).
  KtlPlayer.ndjsonFrames = function (text, marks, startNs) {
    var start = BigInt(startNs);
    var out = [];
    var m = 0;
    var lines = text.split("\n");
    for (var i = 0; i < lines.length; i++) {
      if (!lines[i].trim()) continue;
      var obj = JSON.parse(lines[i]);
      if (typeof obj.raw !== "string" || !obj.raw) continue;
      var seq = parseInt(obj.sequence || "0", 10);
      while (m < marks.length && marks[m][0] < seq) out.push(marks[m++]);
      var ns = BigInt(obj.received_unix_nano || "0") - start;
      var t = ns > BigInt(0) ? Number(ns) / 1e6 : 0;
      out.push([seq, Math.round(t * 1000) / 1000, "o", obj.raw]);
    }
    while (m < marks.length) out.push(marks[m++]);
    return out;
  };

  KtlPlayer.mount = function (root, opts) {
    var player = new KtlPlayer(root, opts);
    var h = hashOptions();
    if (h.speed && !isNaN(parseFloat(h.speed))) player.setSpeed(parseFloat(h.speed));
    var start = h.t !== undefined ? h.t : opts.start === undefined ? "end" : String(opts.start);
    if ("play" in h) {
      player.seek(start === "end" ? 0 : parseFloat(start) * 1000 || 0);
      player.play();
    } else {
      player.seek(start === "end" ? player.duration : parseFloat(start) * 1000 || 0);
    }
    global.ktlPlayer = player;
    return player;
  };

  KtlPlayer.prototype.append = function (frames) {
    // Frames for a live session may arrive later (tail): play times continue from the last one.
    for (var i = 0; i < frames.length; i++) {
      var f = frames[i];
      var n = this.frames.length;
      var pt;
      if (n === 0) pt = Math.max(0, f[1]);
      else {
        var gap = Math.max(0, f[1] - this.frames[n - 1][1]);
        pt = this.playTimes[n - 1] + (this.idleLimit > 0 ? Math.min(gap, this.idleLimit) : gap);
      }
      if (f[2] === "r" && !this.sized) {
        var size = parseSize(f[3]);
        if (size) { this.initialSize = size; this.sized = true; }
      }
      this.frames.push(f);
      this.playTimes.push(pt);
      if (f[2] === "m" || f[2] === "t") this.markers.push({ index: n, time: pt, label: f[3] });
      this.duration = Math.max(this.duration, pt);
    }
    this.textIndex = null;
    if (this.ui) { this._renderMarkers(); this._updateUi(); }
  };

  // playback ---------------------------------------------------------------------------------

  KtlPlayer.prototype._write = function (data, done) {
    var self = this;
    this.pending++;
    this.term.write(data, function () {
      self.pending--;
      if (done) done();
      if (self.pending === 0) self._settled();
    });
  };

  KtlPlayer.prototype._settled = function () {
    this.root.dataset.position = String(Math.round(this.position));
    this.root.dataset.state = this.playing ? "playing" : this.index >= this.frames.length ? "ended" : "paused";
  };

  KtlPlayer.prototype._advanceTo = function (target) {
    // Writes frames whose play time is <= target, batching output between resizes.
    var chunks = [], size = 0, self = this;
    function flush() {
      if (!chunks.length) return;
      var data = new Uint8Array(size), off = 0;
      chunks.forEach(function (c) { data.set(c, off); off += c.length; });
      chunks = []; size = 0;
      self._write(data);
    }
    while (this.index < this.frames.length && this.playTimes[this.index] <= target) {
      var f = this.frames[this.index++];
      if (f[2] === "o") {
        var bytes = b64bytes(f[3]);
        chunks.push(bytes); size += bytes.length;
        if (size > 1 << 20) flush();
      } else if (f[2] === "r") {
        var s = parseSize(f[3]);
        flush();
        if (s) this._write("", (function (c, r) { return function () { self.term.resize(c, r); }; })(s[0], s[1]));
      } else if (f[2] === "t") {
        chunks.push(new TextEncoder().encode("\r\n\x1b[2;3m" + f[3] + "\x1b[0m\r\n"));
        size += chunks[chunks.length - 1].length;
      }
    }
    flush();
    this.position = Math.min(Math.max(target, 0), this.duration);
    if (this.pending === 0) this._settled();
  };

  KtlPlayer.prototype.seek = function (ms) {
    var target = Math.min(Math.max(0, ms), this.duration);
    // Frames [0, end) play by the target; a far seek starts where the screen starts.
    var lo = 0, hi = this.playTimes.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (this.playTimes[mid] <= target) lo = mid + 1; else hi = mid; }
    var from = target < this.position || this.index === 0 ? 0 : this.index;
    if (lo > 0 && lo - from > 64) {
      var start = findStart(this.frames, lo - 1, this._sizeAt(lo - 1)[1]);
      if (start > from) from = start;
    }
    if (from !== this.index || target < this.position || this.index === 0) {
      // Reset in order with the writes still queued in xterm.js, not before them.
      var term = this.term, size = from > 0 ? this._sizeAt(from) : this.initialSize;
      this._write("", function () { term.reset(); term.resize(size[0], size[1]); });
      this.index = from;
      this.position = from > 0 ? this.playTimes[from - 1] : 0;
      this.from = from; // where the last reset started writing (tests read it)
    }
    this._advanceTo(target);
    if (this.playing) this._restartClock();
    this._updateUi();
  };

  // The terminal size in effect at frame `i` (its last resize at or before it).
  KtlPlayer.prototype._sizeAt = function (i) {
    for (var k = Math.min(i, this.frames.length - 1); k >= 0; k--) {
      if (this.frames[k][2] === "r") {
        var s = parseSize(this.frames[k][3]);
        if (s) return s;
      }
    }
    return this.initialSize;
  };

  KtlPlayer.prototype._restartClock = function () {
    this.clockWall = performance.now();
    this.clockPos = this.position;
  };

  KtlPlayer.prototype._tick = function () {
    var self = this;
    this.timer = null;
    if (!this.playing) return;
    var pos = this.clockPos + (performance.now() - this.clockWall) * this.speed;
    this._advanceTo(pos);
    if (this.index >= this.frames.length && pos >= this.duration) {
      this.playing = false;
      this._updateUi();
      if (this.pending === 0) this._settled();
      return;
    }
    this._updateUi();
    var next = this.index < this.frames.length ? this.playTimes[this.index] : this.duration;
    var wait = Math.min(100, Math.max(4, (next - pos) / this.speed));
    this.timer = setTimeout(function () { self._tick(); }, wait);
  };

  KtlPlayer.prototype.play = function () {
    if (this.playing) return;
    if (this.index >= this.frames.length && this.position >= this.duration) this.seek(0);
    this.playing = true;
    this._restartClock();
    this.root.dataset.state = "playing";
    this._tick();
  };

  KtlPlayer.prototype.pause = function () {
    this.playing = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this._updateUi();
    if (this.pending === 0) this._settled();
  };

  KtlPlayer.prototype.toggle = function () { if (this.playing) this.pause(); else this.play(); };

  KtlPlayer.prototype.setSpeed = function (speed) {
    if (!(speed > 0)) return;
    if (this.playing) { this._advanceTo(this.clockPos + (performance.now() - this.clockWall) * this.speed); this._restartClock(); }
    this.speed = speed;
    if (this.ui) this.ui.speed.value = String(speed);
  };

  /** The visible screen as text (lines joined with \n, trailing blanks trimmed). */
  KtlPlayer.prototype.screenText = function () {
    var buf = this.term.buffer.active, lines = [];
    for (var y = 0; y < this.term.rows; y++) {
      var line = buf.getLine(buf.viewportY + y);
      lines.push(line ? line.translateToString(true) : "");
    }
    return lines.join("\n").replace(/\s+$/, "");
  };

  /** The whole buffer (scrollback and screen) as text. */
  KtlPlayer.prototype.bufferText = function () {
    var buf = this.term.buffer.active, lines = [];
    for (var y = 0; y < buf.length; y++) lines.push(buf.getLine(y).translateToString(true));
    return lines.join("\n").replace(/\s+$/, "");
  };

  // search -----------------------------------------------------------------------------------

  KtlPlayer.prototype._buildTextIndex = function () {
    // The output as plain text, with the end offset of every frame, for searching.
    var decoder = new TextDecoder("utf-8"), parts = [], ends = [], idx = [], total = 0;
    for (var i = 0; i < this.frames.length; i++) {
      var f = this.frames[i];
      if (f[2] !== "o") continue;
      var text = decoder.decode(b64bytes(f[3]), { stream: true }).replace(ANSI, "");
      parts.push(text);
      total += text.length;
      ends.push(total);
      idx.push(i);
    }
    this.textIndex = { lower: parts.join("").toLowerCase(), ends: ends, idx: idx };
  };

  KtlPlayer.prototype.search = function (query) {
    this.matches = [];
    this.matchAt = -1;
    var q = (query || "").toLowerCase();
    if (q) {
      if (!this.textIndex) this._buildTextIndex();
      var ti = this.textIndex, from = 0, at;
      while ((at = ti.lower.indexOf(q, from)) >= 0 && this.matches.length < 10000) {
        var end = at + q.length, lo = 0, hi = ti.ends.length - 1;
        while (lo < hi) { var mid = (lo + hi) >> 1; if (ti.ends[mid] >= end) hi = mid; else lo = mid + 1; }
        this.matches.push(ti.idx[lo]);
        from = at + Math.max(1, q.length);
      }
    }
    this.query = query || "";
    this._updateSearch();
    if (this.matches.length) this.nextMatch(1);
    return this.matches.length;
  };

  KtlPlayer.prototype.nextMatch = function (dir) {
    if (!this.matches.length) return;
    var n = this.matches.length;
    this.matchAt = ((this.matchAt + (dir || 1)) % n + n) % n;
    var frame = this.matches[this.matchAt];
    this.pause();
    this.seek(this.playTimes[frame]);
    this._select(this.query);
    this._updateSearch();
  };

  KtlPlayer.prototype._select = function (query) {
    // Selects the last occurrence in the buffer (the one just written) and scrolls to it.
    var self = this, q = query.toLowerCase();
    this._write("", function () {
      var buf = self.term.buffer.active;
      for (var y = buf.length - 1; y >= 0; y--) {
        var text = buf.getLine(y).translateToString(false).toLowerCase();
        var x = text.lastIndexOf(q);
        if (x >= 0) {
          self.term.select(x, y, q.length);
          self.term.scrollToLine(Math.max(0, y - Math.floor(self.term.rows / 2)));
          return;
        }
      }
    });
  };

  // UI ---------------------------------------------------------------------------------------

  KtlPlayer.prototype._build = function () {
    var self = this, ui = {};
    ui.title = el("h1", { cls: "ktl-title" });
    ui.result = el("span", { cls: "ktl-result" });
    ui.play = el("button", { type: "button", cls: "ktl-play", "aria-label": "Play", title: "Play / pause (space)" });
    ui.time = el("span", { cls: "ktl-time" });
    ui.timeline = el("input", { type: "range", cls: "ktl-timeline", min: "0", max: "0", step: "any", value: "0", "aria-label": "Timeline" });
    ui.ticks = el("div", { cls: "ktl-ticks" });
    ui.speed = el("select", { cls: "ktl-speed", "aria-label": "Speed" },
      SPEEDS.map(function (s) { return el("option", { value: String(s), text: s + "×" }); }));
    ui.speed.value = String(this.speed);
    ui.query = el("input", { type: "search", cls: "ktl-search", placeholder: "Search output", "aria-label": "Search output" });
    ui.prev = el("button", { type: "button", cls: "ktl-prev", text: "↑", title: "Previous match" });
    ui.next = el("button", { type: "button", cls: "ktl-next", text: "↓", title: "Next match" });
    ui.count = el("span", { cls: "ktl-count" });
    ui.screen = el("div", { cls: "ktl-screen" });
    ui.meta = el("dl", { cls: "ktl-meta" });
    var track = el("div", { cls: "ktl-track" }, [ui.timeline, ui.ticks]);
    var controls = el("div", { cls: "ktl-controls" }, [ui.play, ui.time, track, ui.speed]);
    var search = el("div", { cls: "ktl-searchbar" }, [ui.query, ui.prev, ui.next, ui.count]);
    var head = el("header", { cls: "ktl-head" }, [ui.title, ui.result]);
    this.root.classList.add("ktl-player");
    [head, ui.screen, controls, search, ui.meta].forEach(function (n) { self.root.appendChild(n); });
    ui.play.addEventListener("click", function () { self.toggle(); });
    ui.timeline.addEventListener("input", function () { self.seek(parseFloat(ui.timeline.value)); });
    ui.speed.addEventListener("change", function () { self.setSpeed(parseFloat(ui.speed.value)); });
    ui.query.addEventListener("keydown", function (e) {
      if (e.key === "Enter") {
        e.preventDefault();
        if (ui.query.value === self.query && self.matches.length) self.nextMatch(e.shiftKey ? -1 : 1);
        else self.search(ui.query.value);
      }
    });
    ui.query.addEventListener("search", function () { if (!ui.query.value) self.search(""); });
    ui.prev.addEventListener("click", function () { self.nextMatch(-1); });
    ui.next.addEventListener("click", function () { self.nextMatch(1); });
    this.root.addEventListener("keydown", function (e) {
      if (e.target === ui.query || e.target === ui.speed) return;
      if (e.key === " ") { e.preventDefault(); self.toggle(); }
      else if (e.key === "ArrowLeft") self.seek(self.position - 5000);
      else if (e.key === "ArrowRight") self.seek(self.position + 5000);
    });
    this.root.tabIndex = 0;
    this.ui = ui;
  };

  KtlPlayer.prototype._renderMarkers = function () {
    var self = this, ticks = this.ui.ticks;
    ticks.textContent = "";
    if (!this.duration) return;
    this.markers.forEach(function (m) {
      // Command blocks are chapters: "$ cmd" where one starts, "exit N: cmd" where it ends.
      var kind = /^exit [1-9]\d*:/.test(m.label) ? " ktl-tick-bad" : /^(\$ |exit 0:|done:)/.test(m.label) ? " ktl-tick-block" : "";
      var tick = el("button", { type: "button", cls: "ktl-tick" + kind, title: fmtTime(m.time) + " " + m.label });
      tick.style.left = (100 * m.time / self.duration) + "%";
      tick.addEventListener("click", function () { self.seek(m.time); });
      ticks.appendChild(tick);
    });
  };

  KtlPlayer.prototype._updateUi = function () {
    var ui = this.ui;
    if (!ui) return;
    ui.play.textContent = this.playing ? "❚❚" : "▶";
    ui.play.setAttribute("aria-label", this.playing ? "Pause" : "Play");
    ui.timeline.max = String(this.duration);
    ui.timeline.value = String(this.position);
    ui.time.textContent = fmtTime(this.position) + " / " + fmtTime(this.duration);
  };

  KtlPlayer.prototype._updateSearch = function () {
    var n = this.matches.length;
    this.ui.count.textContent = this.query ? (n ? (this.matchAt + 1) + "/" + n + (n >= 10000 ? "+" : "") : "no match") : "";
  };

  KtlPlayer.prototype._renderMeta = function () {
    var s = this.session, meta = s.meta || {}, ui = this.ui, rows = [];
    var command = KtlPlayer.commandLine(meta);
    ui.title.textContent = s.title || command || s.sessionId || "session";
    var result = s.state || "";
    if (s.exitCode !== undefined && s.exitCode !== null) result += " · exit " + s.exitCode;
    if (s.signal) result += " · " + s.signal;
    ui.result.textContent = result;
    ui.result.className = "ktl-result ktl-state-" + (s.state || "unknown");
    function add(name, value) {
      if (value === undefined || value === null || value === "") return;
      rows.push(el("dt", { text: name }), el("dd", { text: String(value) }));
    }
    add("Command", command);
    add("Result", result);
    add("Error", s.error);
    add("Started", fmtDate(s.createdAt));
    add("Ended", fmtDate(s.endedAt));
    if (s.durationMs !== undefined) add("Duration", fmtTime(s.durationMs) + " (" + (s.durationMs / 1000).toFixed(1) + " s)");
    ["requester", "cluster", "kubeContext", "namespace", "release", "chart", "repo", "cwd"].forEach(function (k) {
      add(k === "kubeContext" ? "Context" : k.charAt(0).toUpperCase() + k.slice(1), meta[k]);
    });
    var tags = Object.keys(s.tags || {}).map(function (k) { return k + "=" + s.tags[k]; }).join(", ");
    add("Tags", tags);
    add("Kind", s.kind);
    add("Session", s.sessionId);
    rows.forEach(function (r) { ui.meta.appendChild(r); });
    this._renderMarkers();
  };

  global.KtlPlayer = KtlPlayer;
})(window);
