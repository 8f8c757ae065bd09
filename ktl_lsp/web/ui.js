/*
 * ktl-lsp replay UI: the session list (/ui/) and the session page (/ui/s/<id>).
 *
 * Same-origin only: the API sends the ktl_token cookie (set by the one-time sign-in link).
 * No inline scripts (the page's CSP forbids them), nothing fetched from elsewhere.
 *
 * The session page uses RemotePlayer: KtlPlayer's controls and terminal (player.js), but the
 * frames come from the gateway a page at a time. Opening or seeking asks the server where to
 * start (/api/v1/sessions/{id}/seek: a frame from which replaying reproduces the screen, see
 * ktl_lsp/gateway/seek.py) and writes only frames from there, so a 100 MB session opens and
 * seeks without replaying from the start. A running session is tailed over SSE
 * (/api/v1/mirror/sessions/{id}/tail); frames are deduplicated by sequence, and a gap
 * (reconnect, `event: dropped`) is filled from /frames before later frames are written.
 *
 * For tests and benchmarks: document.body.dataset.view ("list" | "session"), the list's
 * rows carry data-session-id / data-state, window.ktlPlayer is the player, with
 * seekTo(ms) -> Promise (resolved once the screen is parsed), stats {opens, dups, gaps,
 * filled, lost}, and its root's dataset.ready ("1" once the first screen is shown),
 * dataset.readyMs (performance.now() then), dataset.seq (last frame written).
 */
(function (global) {
  "use strict";

  var KtlPlayer = global.KtlPlayer;
  var STATES = ["running", "done", "error", "cancelled", "interrupted"];
  var PAGE_BYTES = 2 << 20;
  var PREFETCH_BYTES = 1 << 20;
  // How far back the server may look for a start (seek.py): past it the screen is approximate
  // (cells drawn earlier and never redrawn are missing); 512 KiB keeps a seek under ~200 ms.
  var SEEK_BUDGET = 512 << 10;
  var TRIM_PREFIX = "frames not kept";

  // helpers ----------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null) return;
      if (k === "text") node.textContent = v;
      else if (k === "cls") node.className = v;
      else node.setAttribute(k, v);
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function api(path, opts) {
    return fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store" }, opts || {}))
      .then(function (r) {
        if (r.status === 401) { global.location.reload(); throw new Error("signed out"); }
        if (!r.ok) return r.text().then(function (t) { throw new Error(r.status + ": " + t.trim()); });
        return r.status === 204 ? null : r.json();
      });
  }

  function qs(params) {
    return Object.keys(params).filter(function (k) { return params[k] !== "" && params[k] !== undefined && params[k] !== null; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
  }

  function fmtDuration(ms) {
    if (ms === undefined || ms === null) return "";
    if (ms < 1000) return ms + " ms";
    var s = ms / 1000;
    if (s < 60) return s.toFixed(1) + " s";
    var m = Math.floor(s / 60), h = Math.floor(m / 60);
    return h ? h + " h " + (m % 60) + " m" : m + " m " + Math.floor(s % 60) + " s";
  }

  function fmtWhen(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return iso;
    var today = new Date();
    return d.toDateString() === today.toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
  }

  function nsToMs(ns) {
    if (!ns) return 0;
    var s = String(ns);
    if (s.length <= 6) return Number(s) / 1e6;
    return Number(s.slice(0, -6)) + Number(s.slice(-6)) / 1e6;
  }

  function b64bytes(s) {
    var bin = atob(s || "");
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function hasAltExit(bytes) {
    // ESC [ ? 1049 l, ESC [ ? 1047 l or ESC [ ? 47 l: the main screen comes back.
    for (var i = bytes.indexOf(27); i >= 0 && i < bytes.length - 4; i = bytes.indexOf(27, i + 1)) {
      if (bytes[i + 1] !== 91 || bytes[i + 2] !== 63) continue;
      var j = i + 3, n = 0;
      while (j < bytes.length && bytes[j] >= 48 && bytes[j] <= 57 && j - i < 9) n = n * 10 + bytes[j++] - 48;
      if (bytes[j] === 108 && (n === 1049 || n === 1047 || n === 47)) return true;
    }
    return false;
  }

  function shownState(s) {
    // A running session that waits for a person (meta.waiting) shows as paused.
    return s.state === "running" && s.meta && s.meta.waiting ? "paused" : s.state;
  }

  function badge(state) {
    return el("span", { cls: "ui-badge ktl-result ktl-state-" + (state || "unknown"), text: state || "?" });
  }

  function sessionPath(id) { return "/ui/s/" + encodeURIComponent(id); }

  // the list ---------------------------------------------------------------------------------

  function ListPage(root) {
    var self = this;
    this.root = root;
    this.timer = null;
    this.kinds = {};
    var params = new URLSearchParams(global.location.search);
    this.state = el("select", { cls: "ui-filter", name: "state", "aria-label": "State" },
      [el("option", { value: "", text: "any state" })].concat(STATES.map(function (s) { return el("option", { value: s, text: s }); })));
    this.kind = el("select", { cls: "ui-filter", name: "kind", "aria-label": "Kind" }, [el("option", { value: "", text: "any kind" })]);
    this.text = el("input", { cls: "ui-filter ui-text", type: "search", name: "q", placeholder: "Filter by title or command", "aria-label": "Text" });
    this.state.value = params.get("state") || "";
    this.text.value = params.get("q") || "";
    this.wantKind = params.get("kind") || "";
    this.search = el("input", { cls: "ui-filter ui-search", type: "search", name: "search", placeholder: "Search every session's output", "aria-label": "Search output" });
    this.search.value = params.get("search") || "";
    this.hits = el("ol", { cls: "ui-hits", hidden: "" });
    this.status = el("span", { cls: "ui-status" });
    this.notice = el("p", { cls: "ui-import", role: "status", hidden: "" });
    this.body = el("tbody");
    var table = el("table", { cls: "ui-sessions" }, [
      el("thead", {}, [el("tr", {}, ["", "State", "Session", "Kind", "Started", "Duration", "Exit"].map(function (h) { return el("th", { text: h }); }))]),
      this.body,
    ]);
    root.appendChild(el("section", { cls: "ui-list" }, [
      el("div", { cls: "ui-filters" }, [this.state, this.kind, this.text, this.search, this.status]),
      this.notice,
      this.hits,
      table,
      el("p", { cls: "ui-empty", hidden: "" , text: "No sessions match." }),
    ]));
    this.empty = root.querySelector(".ui-empty");
    var debounce = null;
    function changed() {
      clearTimeout(debounce);
      debounce = setTimeout(function () { self.syncAddress(); self.load(); }, 150);
    }
    this.state.addEventListener("change", changed);
    this.kind.addEventListener("change", changed);
    this.text.addEventListener("input", changed);
    var searching = null;
    this.search.addEventListener("input", function () {
      clearTimeout(searching);
      searching = setTimeout(function () { self.syncAddress(); self.find(); }, 250);
    });
    document.body.dataset.view = "list";
    this.acceptDrops();
    this.load();
    if (this.search.value.trim()) this.find();
  }

  // Search across sessions: each match opens its session at the frame that holds it.
  ListPage.prototype.find = function () {
    var self = this, q = this.search.value.trim();
    var generation = this.findGeneration = (this.findGeneration || 0) + 1;
    if (!q) {
      this.hits.hidden = true;
      this.hits.replaceChildren();
      document.body.dataset.hits = "";
      return Promise.resolve();
    }
    var url = "/api/v1/search?" + qs({ q: q, state: this.state.value, kind: this.kind.value, limit: 100 });
    return api(url).then(function (res) {
      if (generation !== self.findGeneration) return;
      var items = (res.matches || []).map(function (m) {
        var line = el("span", { cls: "ui-hit-line" });
        var at = 0;
        (m.highlights || []).forEach(function (h) {
          if (h[0] < at) return;
          line.appendChild(document.createTextNode(m.line.slice(at, h[0])));
          line.appendChild(el("mark", { text: m.line.slice(h[0], h[1]) }));
          at = h[1];
        });
        line.appendChild(document.createTextNode(m.line.slice(at)));
        var where = m.sessionId.slice(0, 8) + (m.block !== undefined ? " #" + m.block : "");
        return el("li", {}, [el("a", { href: sessionPath(m.sessionId) + "#seq=" + m.seq, cls: "ui-hit", "data-session-id": m.sessionId, "data-seq": String(m.seq) }, [el("span", { cls: "ui-hit-where", text: where }), line])]);
      });
      if (!items.length) items = [el("li", { cls: "ui-empty", text: "No output matches." })];
      self.hits.replaceChildren.apply(self.hits, items);
      self.hits.hidden = false;
      document.body.dataset.hits = String((res.matches || []).length);
    }).catch(function (err) {
      self.status.textContent = "Could not search: " + err.message;
    });
  };

  // A .ktlbundle dropped on the list is uploaded to the gateway and imported (read-only).
  ListPage.prototype.acceptDrops = function () {
    var self = this, body = document.body;
    function carriesFiles(e) {
      return e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types || [], "Files") >= 0;
    }
    body.addEventListener("dragover", function (e) {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
      body.dataset.dropping = "1";
    });
    body.addEventListener("dragleave", function (e) {
      if (!e.relatedTarget) delete body.dataset.dropping;
    });
    body.addEventListener("drop", function (e) {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      delete body.dataset.dropping;
      self.importFiles(Array.prototype.slice.call(e.dataTransfer.files));
    });
  };

  ListPage.prototype.importFiles = function (files) {
    var self = this;
    var bundles = files.filter(function (f) { return /\.ktlbundle$/i.test(f.name); });
    if (!bundles.length) {
      this.tell("Drop a .ktlbundle file here to import its sessions.", true);
      return Promise.resolve();
    }
    return bundles.reduce(function (chain, file) {
      return chain.then(function () {
        self.tell("Importing " + file.name + "…", false);
        return api("/api/v1/bundles?" + qs({ name: file.name }), { method: "POST", body: file, headers: { "Content-Type": "application/zip" } })
          .then(function (res) {
            var n = (res.sessions || []).length;
            self.tell("Imported " + n + " session" + (n === 1 ? "" : "s") + " from " + file.name + " (read-only).", false);
            return self.load();
          })
          .catch(function (err) { self.tell("Could not import " + file.name + ": " + err.message, true); });
      });
    }, Promise.resolve());
  };

  ListPage.prototype.tell = function (text, bad) {
    this.notice.textContent = text;
    this.notice.className = "ui-import" + (bad ? " ui-bad" : "");
    this.notice.hidden = false;
  };

  ListPage.prototype.syncAddress = function () {
    var q = qs({ state: this.state.value, kind: this.kind.value, q: this.text.value.trim(), search: this.search.value.trim() });
    global.history.replaceState(null, "", "/ui/" + (q ? "?" + q : ""));
  };

  ListPage.prototype.load = function () {
    var self = this;
    clearTimeout(this.timer);
    var kind = this.kind.value || this.wantKind;
    var url = "/api/v1/sessions?" + qs({ state: this.state.value, kind: kind, q: this.text.value.trim(), limit: 500 });
    var generation = this.generation = (this.generation || 0) + 1;
    return api(url).then(function (res) {
      if (generation !== self.generation) return;
      self.render(res.sessions || []);
      self.status.textContent = "";
      var running = (res.sessions || []).some(function (s) { return s.state === "running"; });
      self.timer = setTimeout(function () { self.load(); }, running ? 1000 : 2000);
    }).catch(function (err) {
      self.status.textContent = "Could not load sessions: " + err.message;
      self.timer = setTimeout(function () { self.load(); }, 5000);
    });
  };

  ListPage.prototype.render = function (sessions) {
    var self = this;
    sessions.forEach(function (s) {
      if (s.kind && !self.kinds[s.kind]) {
        self.kinds[s.kind] = true;
        self.kind.appendChild(el("option", { value: s.kind, text: s.kind }));
      }
    });
    if (this.wantKind && this.kinds[this.wantKind]) { this.kind.value = this.wantKind; this.wantKind = ""; }
    var rows = sessions.map(function (s) {
      var pin = el("button", { type: "button", cls: "ui-pin" + (s.pinned ? " ui-pinned" : ""), title: s.pinned ? "Pinned: kept by pruning (click to unpin)" : "Pin (keep)", "aria-pressed": s.pinned ? "true" : "false", text: s.pinned ? "★" : "☆" });
      pin.addEventListener("click", function (e) {
        e.preventDefault();
        api("/api/v1/sessions/" + encodeURIComponent(s.sessionId) + "/pin", { method: s.pinned ? "DELETE" : "POST" }).then(function () { self.load(); });
      });
      var command = KtlPlayer.commandLine(s.meta);
      var title = el("a", { href: sessionPath(s.sessionId), cls: "ui-title", text: s.title || command || s.sessionId });
      var imported = s.meta && s.meta.imported;
      var mark = imported ? el("span", { cls: "ui-imported", title: "imported from " + (imported.from || "a bundle") + ": read-only", text: "imported" }) : null;
      var exit = s.exitCode !== undefined ? String(s.exitCode) : s.signal || "";
      return el("tr", { "data-session-id": s.sessionId, "data-state": s.state, cls: "ui-row ui-row-" + s.state }, [
        el("td", {}, [pin]),
        el("td", {}, [badge(shownState(s))]),
        el("td", {}, [title, mark, command && command !== s.title ? el("div", { cls: "ui-sub", text: command }) : null]),
        el("td", { text: s.kind || "" }),
        el("td", { text: fmtWhen(s.createdAt), title: s.createdAt || "" }),
        el("td", { cls: "ui-num", text: fmtDuration(s.durationMs) }),
        el("td", { cls: "ui-num" + (s.exitCode ? " ui-bad" : ""), text: exit }),
      ]);
    });
    this.body.replaceChildren.apply(this.body, rows);
    this.empty.hidden = rows.length > 0;
    document.body.dataset.rows = String(rows.length);
  };

  // the remote player --------------------------------------------------------------------------

  function RemotePlayer(root, session, index) {
    this.remote = false;
    KtlPlayer.call(this, root, { session: session, frames: [], size: index.size || [80, 24] });
    this.remote = true;
    this.sid = session.sessionId;
    this.idle = index.idle_ms;
    this.lastSeq = index.last_seq; // the last frame the server has (grows while live)
    this.duration = index.duration_ms;
    this.markers = (index.markers || []).map(function (m) { return { time: m[1], label: m[2], seq: m[0] }; });
    this.win = []; // fetched frames: [seq, playMs, type, payload]; win[0..wi) are written
    this.wi = 0;
    this.written = 0; // last sequence written to the terminal
    this.loadedTo = 0; // last sequence fetched (win's last, or written)
    this.lastTs = null; // wall ms of the frame loadedTo (to continue play times)
    this.lastPt = 0;
    this.seekTarget = null;
    this.seeking = null;
    this.fetching = null;
    this.chain = Promise.resolve(); // live frames and gap fills, in order
    this.stats = { opens: 0, dups: 0, gaps: 0, filled: 0, lost: 0, seeks: 0 };
    this.wpt = -1; // play time of the frame `written`
    this.liveTs = null; // wall ms of the newest live frame seen while behind the live edge
    this.replayStart = 1; // the frame the terminal's content was replayed from
    this.resync = null;
    this.generation = 0; // bumped by every seek from the server: older loads are dropped
    this._renderMarkers();
    this._updateUi();
  }
  RemotePlayer.prototype = Object.create(KtlPlayer.prototype);
  RemotePlayer.prototype.constructor = RemotePlayer;

  RemotePlayer.prototype.append = function (frames) {
    if (this.remote) throw new Error("RemotePlayer fetches its own frames");
  };

  RemotePlayer.prototype._settled = function () {
    this.root.dataset.position = String(Math.round(this.position));
    this.root.dataset.seq = String(this.written);
    var atEnd = this.written >= this.lastSeq && this.position >= this.duration;
    this.root.dataset.state = this.seeking ? "seeking" : this.playing ? "playing" : atEnd ? "ended" : "paused";
  };

  RemotePlayer.prototype._compact = function (m) {
    // A MirrorFrame as the player's compact frame, with its play time.
    var seq = parseInt(m.sequence, 10);
    var ts = m.received_unix_nano ? nsToMs(m.received_unix_nano) : this.lastTs; // a synthetic gap marker has none
    var pt;
    if (this.lastTs === null) pt = this.lastPt;
    else {
      var gap = Math.max(0, ts - this.lastTs);
      pt = this.lastPt + (this.idle > 0 ? Math.min(gap, this.idle) : gap);
    }
    this.lastTs = ts;
    this.lastPt = pt;
    var ev = m.ktl_event, type = "o", payload = m.raw || "";
    if (ev) {
      type = "x";
      payload = "";
      var obj = null;
      try { obj = ev.json ? JSON.parse(ev.json) : null; } catch (e) { obj = null; }
      if (ev.type === "resize" && obj && obj.cols && obj.rows) { type = "r"; payload = obj.cols + "x" + obj.rows; }
      else if ((ev.type === "marker" || ev.type === "event") && obj && obj.trimmed) {
        type = "t"; payload = "[" + (obj.trimmed.frames || "some") + " " + TRIM_PREFIX + "]";
      }
    }
    return [seq, pt, type, payload];
  };

  RemotePlayer.prototype._take = function (mirrorFrames) {
    // Appends fetched frames after loadedTo (older or repeated ones are ignored).
    var added = 0;
    for (var i = 0; i < mirrorFrames.length; i++) {
      var seq = parseInt(mirrorFrames[i].sequence, 10);
      if (seq <= this.loadedTo) { this.stats.dups++; continue; }
      var f = this._compact(mirrorFrames[i]);
      this.win.push(f);
      this.loadedTo = seq;
      if (f[1] > this.duration) this.duration = f[1];
      added++;
    }
    if (this.loadedTo > this.lastSeq) this.lastSeq = this.loadedTo;
    return added;
  };

  RemotePlayer.prototype._frames = function (fromSeq, maxBytes, limit) {
    var url = "/api/v1/sessions/" + encodeURIComponent(this.sid) + "/frames?" +
      qs({ from_seq: fromSeq, limit: limit || 5000, max_bytes: maxBytes || PAGE_BYTES });
    return api(url);
  };

  RemotePlayer.prototype._loadMore = function () {
    // Fetches the next page after loadedTo (one at a time).
    var self = this;
    if (this.fetching) return this.fetching;
    if (this.loadedTo >= this.lastSeq) return Promise.resolve(0);
    var from = this.loadedTo + 1, generation = this.generation;
    this.fetching = this._frames(from, PAGE_BYTES).then(function (res) {
      self.fetching = null;
      if (generation !== self.generation || self.loadedTo !== from - 1) return 0;
      if (res.last_seq > self.lastSeq) self.lastSeq = res.last_seq;
      if (!res.frames.length) { self.lastSeq = self.loadedTo; return 0; }
      return self._take(res.frames);
    }, function (err) { self.fetching = null; throw err; });
    return this.fetching;
  };

  RemotePlayer.prototype._compactWin = function () {
    if (this.wi > 4096) { this.win.splice(0, this.wi); this.wi = 0; }
  };

  RemotePlayer.prototype._writeUpTo = function (target, maxSeq) {
    // Writes loaded frames with play time <= target (and seq <= maxSeq), batched.
    var chunks = [], size = 0, self = this;
    function flush() {
      if (!chunks.length) return;
      var data = new Uint8Array(size), off = 0;
      chunks.forEach(function (c) { data.set(c, off); off += c.length; });
      chunks = []; size = 0;
      self._write(data);
    }
    while (this.wi < this.win.length) {
      var f = this.win[this.wi];
      if (f[1] > target || (maxSeq !== undefined && f[0] > maxSeq)) break;
      this.wi++;
      this.written = f[0];
      this.wpt = f[1];
      if (f[2] === "o") {
        var bytes = b64bytes(f[3]);
        chunks.push(bytes); size += bytes.length;
        if (size > 1 << 20) flush();
        // The replay started inside a full-screen program (after a seek): the main screen it
        // returns to was not replayed, so ask the server for a start before the program.
        if (this.replayStart > 1 && !this.seekWriting && !this.resync && hasAltExit(bytes)) this.resync = [f[1], f[0]];
      } else if (f[2] === "r") {
        var m = /^(\d+)x(\d+)$/.exec(f[3]);
        flush();
        if (m) this._write("", (function (c, r) { return function () { self.term.resize(c, r); }; })(+m[1], +m[2]));
      } else if (f[2] === "t") {
        var t = new TextEncoder().encode("\r\n\x1b[2;3m" + f[3] + "\x1b[0m\r\n");
        chunks.push(t); size += t.length;
      }
    }
    flush();
    this._compactWin();
    if (this.resync && !this.seeking) {
      var at = this.resync;
      this.resync = null;
      this.seekTo(at[0], at[1]);
    }
  };

  RemotePlayer.prototype._loadedPt = function () {
    return this.win.length ? this.win[this.win.length - 1][1] : this.position;
  };

  RemotePlayer.prototype._remainingBytes = function () {
    var n = 0;
    for (var i = this.wi; i < this.win.length && n < PREFETCH_BYTES; i++) n += this.win[i][3].length;
    return n;
  };

  RemotePlayer.prototype._advanceTo = function (target) {
    // Forward play: writes what is loaded, prefetches what comes next.
    if (this.seeking) return;
    this._writeUpTo(target);
    var complete = this.loadedTo >= this.lastSeq;
    var avail = complete ? Math.max(this.duration, this._loadedPt()) : this._loadedPt();
    this.position = Math.max(0, Math.min(target, avail, this.duration));
    this.stalled = !complete && target > avail;
    if (!complete && this._remainingBytes() < PREFETCH_BYTES) {
      var self = this;
      this._loadMore().then(function () { if (!self.playing) self._settled(); }, function () {});
    }
    if (this.pending === 0) this._settled();
  };

  RemotePlayer.prototype.seek = function (ms) {
    this.seekTo(ms);
  };

  /**
   * Seeks to ms of play time (or to frame seq, when given: its play time is ms); resolves
   * once the terminal has parsed the new screen.
   */
  RemotePlayer.prototype.seekTo = function (ms, seq) {
    var self = this;
    this.seekTarget = Math.min(Math.max(0, ms), this.duration);
    this.seekSeq = seq || null;
    this.position = this.seekTarget;
    this._updateUi();
    if (!this.seeking) {
      this.root.dataset.state = "seeking";
      // Started on a later tick so that this.seeking is set while any seek step runs.
      this.seeking = Promise.resolve().then(function () { return self._seekLoop(); }).then(function () {
        self.seeking = null;
        if (self.playing) self._restartClock();
        self._updateUi();
        return self._drained();
      }, function (err) {
        self.seeking = null;
        self._error("Seek failed: " + err.message);
      }).then(function () { self.stats.seeks++; self._settled(); });
    }
    return this.seeking;
  };

  RemotePlayer.prototype._drained = function () {
    var self = this;
    return new Promise(function (resolve) { self._write("", function () { self.term.scrollToBottom(); resolve(); }); });
  };

  /** The terminal's screen (not the scrolled viewport) as text, trailing blanks trimmed. */
  RemotePlayer.prototype.screenText = function () {
    var buf = this.term.buffer.active, lines = [];
    for (var y = 0; y < this.term.rows; y++) {
      var line = buf.getLine(buf.baseY + y);
      lines.push(line ? line.translateToString(true) : "");
    }
    return lines.join("\n").replace(/\s+$/, "");
  };

  RemotePlayer.prototype._seekLoop = function () {
    var self = this;
    if (this.seekTarget === null) return Promise.resolve();
    var t = this.seekTarget, seq = this.seekSeq;
    this.seekTarget = null;
    this.seekSeq = null;
    return this._seekOnce(t, seq).then(function () { return self._seekLoop(); });
  };

  RemotePlayer.prototype._seekOnce = function (t, seq) {
    var self = this;
    // Forward within what is loaded: just write on.
    if (this.written > 0 && t >= this.wpt && (t <= this._loadedPt() || this.loadedTo >= this.lastSeq) &&
        this._bytesUntil(t) < PAGE_BYTES) {
      this._writeUpTo(t + 0.001);
      this.position = Math.min(t, this.duration);
      if (!this.resync) return Promise.resolve();
      this.resync = null; // left a full-screen program the replay started in: ask the server
    }
    var generation = ++this.generation;
    var url = "/api/v1/sessions/" + encodeURIComponent(this.sid) + "/seek?" + qs({ seq: seq || "", t_ms: seq ? "" : t, budget: SEEK_BUDGET });
    return api(url).then(function (r) {
      if (r.last_seq > self.lastSeq) self.lastSeq = r.last_seq;
      var got = [];
      function page(from) {
        if (r.seq === 0 || from > r.seq) return Promise.resolve();
        // Only what the screen needs (S..N) and a little after it: play fetches the rest.
        return self._frames(from, PREFETCH_BYTES, Math.min(5000, r.seq - from + 16)).then(function (res) {
          got = got.concat(res.frames);
          var last = res.frames.length ? parseInt(res.frames[res.frames.length - 1].sequence, 10) : r.seq;
          if (!res.frames.length || last >= r.seq) return;
          return page(last + 1);
        });
      }
      return page(r.start).then(function () {
        if (generation !== self.generation) return;
        var term = self.term;
        self._write("", function () { term.reset(); term.resize(r.cols, r.rows); });
        self.win = []; self.wi = 0; self.written = 0; self.wpt = -1; self.liveTs = null;
        self.loadedTo = r.start - 1;
        self.lastTs = null;
        self.lastPt = r.start_play_ms;
        self._take(got);
        self.replayStart = r.start;
        self.seekWriting = true;
        self._writeUpTo(Infinity, r.seq);
        self.seekWriting = false;
        self.written = Math.max(self.written, r.seq);
        self.position = Math.min(Math.max(t, 0), self.duration);
        self.lastSeek = r;
      });
    });
  };

  RemotePlayer.prototype._bytesUntil = function (t) {
    var n = 0;
    for (var i = this.wi; i < this.win.length && this.win[i][1] <= t; i++) n += this.win[i][3].length;
    return n;
  };

  RemotePlayer.prototype._tick = function () {
    var self = this;
    this.timer = null;
    if (!this.playing) return;
    if (!this.seeking) {
      var pos = this.clockPos + (performance.now() - this.clockWall) * this.speed;
      this._advanceTo(pos);
      if (this.position < pos - 1) this._restartClock(); // waiting for data: do not run ahead
      var running = this.session.state === "running";
      if (!running && this.loadedTo >= this.lastSeq && this.wi >= this.win.length && pos >= this.duration) {
        this.playing = false;
        this._updateUi();
        this._settled();
        return;
      }
      this._updateUi();
    }
    var next = this.wi < this.win.length ? this.win[this.wi][1] : this.duration + 50;
    var wait = Math.min(100, Math.max(4, (next - this.position) / this.speed));
    this.timer = setTimeout(function () { self._tick(); }, wait);
  };

  RemotePlayer.prototype.play = function () {
    if (this.playing) return;
    var atEnd = this.loadedTo >= this.lastSeq && this.wi >= this.win.length && this.position >= this.duration;
    if (atEnd && this.session.state !== "running") this.seekTo(0);
    this.playing = true;
    this._restartClock();
    this.root.dataset.state = "playing";
    this._tick();
  };

  // live ---------------------------------------------------------------------------------------

  RemotePlayer.prototype.follow = function (onEnd) {
    // Tails the session: frames after loadedTo, deduplicated by sequence, gaps filled.
    var self = this;
    var url = "/api/v1/mirror/sessions/" + encodeURIComponent(this.sid) + "/tail?" +
      qs({ from_sequence: this.loadedTo + 1, retry_ms: 500, heartbeat_ms: 5000 });
    var es = this.source = new EventSource(url, { withCredentials: true });
    this.live = true;
    es.addEventListener("open", function () { self.stats.opens++; self._liveStatus("live"); });
    es.addEventListener("frame", function (e) {
      var m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      self._enqueue(function () { return self._liveFrame(m); });
    });
    es.addEventListener("dropped", function (e) {
      var d;
      try { d = JSON.parse(e.data); } catch (err) { return; }
      self._enqueue(function () { return self._fill(parseInt(d.from_sequence, 10), parseInt(d.to_sequence, 10)); });
    });
    es.addEventListener("end", function (e) {
      es.close();
      var d = {};
      try { d = JSON.parse(e.data); } catch (err) { d = {}; }
      self._enqueue(function () {
        var last = parseInt(d.last_sequence, 10);
        return (last > self.loadedTo ? self._fill(self.loadedTo + 1, last) : Promise.resolve()).then(function () {
          self.live = false;
          self._liveStatus("");
          if (onEnd) return onEnd(d);
        });
      });
    });
    es.addEventListener("error", function () {
      if (es.readyState === EventSource.CLOSED) { self._liveStatus("disconnected"); }
      else self._liveStatus("reconnecting…");
    });
  };

  RemotePlayer.prototype._enqueue = function (fn) {
    var self = this;
    this.chain = this.chain.then(function () {
      // Live frames wait for a seek in progress: it replaces the window.
      return self.seeking ? self.seeking.then(fn) : fn();
    }).catch(function (err) { self._error("Live update failed: " + err.message); });
    return this.chain;
  };

  RemotePlayer.prototype._liveFrame = function (m) {
    var self = this, seq = parseInt(m.sequence, 10), g = this.generation;
    if (seq <= this.loadedTo) { this.stats.dups++; return; }
    if (this.loadedTo < this.lastSeq && seq > this.loadedTo + 1) {
      // Behind the live edge (after a seek back): the pager fetches it when play gets there.
      var ts = nsToMs(m.received_unix_nano);
      if (this.liveTs !== null) this.duration += Math.min(Math.max(0, ts - this.liveTs), this.idle > 0 ? this.idle : Infinity);
      this.liveTs = ts;
      this.lastSeq = Math.max(this.lastSeq, seq);
      this._updateUi();
      return;
    }
    var before = seq > this.loadedTo + 1 ? this._fill(this.loadedTo + 1, seq - 1) : Promise.resolve();
    return before.then(function () {
      if (g !== self.generation) return;
      if (seq <= self.loadedTo) { self.stats.dups++; return; }
      self._take([m]);
      self._caughtUp();
    });
  };

  RemotePlayer.prototype._fill = function (from, to) {
    // Fetches frames from..to from the store; what it no longer has is reported lost.
    var self = this, g = this.generation;
    if (to < from || to <= this.loadedTo) return Promise.resolve();
    if (this.loadedTo < this.lastSeq && from > this.loadedTo + 1) return Promise.resolve(); // behind: the pager gets it
    from = Math.max(from, this.loadedTo + 1);
    this.stats.gaps++;
    function page(start) {
      if (start > to || g !== self.generation) return Promise.resolve();
      return self._frames(start, PAGE_BYTES, Math.min(5000, to - start + 1)).then(function (res) {
        if (g !== self.generation) return;
        var frames = res.frames.filter(function (f) { return parseInt(f.sequence, 10) <= to; });
        if (!frames.length) {
          self.stats.lost += to - start + 1;
          self._take([{ sequence: String(to), ktl_event: { type: "marker", json: JSON.stringify({ trimmed: { from: start, to: to, frames: to - start + 1 } }) } }]);
          return;
        }
        self.stats.filled += self._take(frames);
        var last = parseInt(frames[frames.length - 1].sequence, 10);
        if (last < to) return page(last + 1);
      });
    }
    return page(from).then(function () { self._caughtUp(); });
  };

  RemotePlayer.prototype._caughtUp = function () {
    if (this.loadedTo > this.lastSeq) this.lastSeq = this.loadedTo;
    if (this.playing) return; // the clock writes it
    this._updateUi();
  };

  RemotePlayer.prototype._liveStatus = function (text) {
    if (this.onLive) this.onLive(text);
  };

  RemotePlayer.prototype._error = function (text) {
    if (this.onError) this.onError(text);
  };

  // search ---------------------------------------------------------------------------------------

  RemotePlayer.prototype.search = function (query) {
    var self = this;
    this.matches = [];
    this.matchAt = -1;
    this.query = query || "";
    this._updateSearch();
    if (!this.query) return Promise.resolve(0);
    this.ui.count.textContent = "searching…";
    var url = "/api/v1/sessions/" + encodeURIComponent(this.sid) + "/search?" + qs({ q: this.query, limit: 1000 });
    return api(url).then(function (res) {
      if (self.query !== query) return 0;
      self.matches = res.matches;
      self.truncated = res.truncated;
      self._updateSearch();
      if (self.matches.length) return self.nextMatch(1).then(function () { return self.matches.length; });
      return 0;
    });
  };

  RemotePlayer.prototype.nextMatch = function (dir) {
    if (!this.matches.length) return Promise.resolve();
    var self = this, n = this.matches.length;
    this.matchAt = ((this.matchAt + (dir || 1)) % n + n) % n;
    var match = this.matches[this.matchAt];
    this.pause();
    this._updateSearch();
    return this.seekTo(match.play_ms, match.seq).then(function () {
      self._select(self.query);
      return self._drained();
    });
  };

  RemotePlayer.prototype._updateSearch = function () {
    var n = this.matches.length;
    this.ui.count.textContent = this.query ? (n ? (this.matchAt + 1) + "/" + n + (this.truncated ? "+" : "") : "no match") : "";
  };

  // the session page -----------------------------------------------------------------------------

  function SessionPage(root, id) {
    var self = this;
    this.root = root;
    this.id = id;
    document.body.dataset.view = "session";
    this.head = el("div", { cls: "ui-session-head" });
    this.notice = el("div", { cls: "ui-notice", role: "status" });
    this.mount = el("div", { cls: "ui-player" });
    root.appendChild(el("section", { cls: "ui-session" }, [this.head, this.notice, this.mount]));
    var base = "/api/v1/sessions/" + encodeURIComponent(id);
    Promise.all([api(base), api(base + "/index?points=1000")]).then(function (got) {
      self.session = got[0];
      document.title = (got[0].title || id) + " · ktl-lsp";
      self.renderHead();
      var player = self.player = new RemotePlayer(self.mount, got[0], got[1]);
      global.ktlPlayer = player;
      player.onError = function (t) { self.say(t, true); };
      player.onLive = function (t) { self.live.textContent = t; self.live.dataset.state = t; };
      var hash = new URLSearchParams((global.location.hash || "").replace(/^#/, ""));
      var t = hash.get("t");
      var start = t === null || t === "end" ? player.duration : parseFloat(t) * 1000 || 0;
      self.loadBlocks(base);
      var seq = parseInt(hash.get("seq") || "", 10);
      // A search match: the screen as it was when that frame was written.
      var at = seq > 0
        ? api(base + "/seek?seq=" + seq).then(function (r) { return player.seekTo(r.play_ms, seq); })
        : player.seekTo(start);
      return at.then(function () {
        player.root.dataset.ready = "1";
        player.root.dataset.readyMs = String(Math.round(performance.now()));
        if (hash.has("speed")) player.setSpeed(parseFloat(hash.get("speed")));
        if (self.session.state === "running") {
          player.follow(function () { return self.refresh(); });
          player.play();
        } else if (hash.has("play")) {
          player.play();
        }
        player.root.focus({ preventScroll: true });
      });
    }).catch(function (err) {
      self.say("Could not open the session: " + err.message, true);
    });
  }

  // A shell's command blocks: a list to jump to, red for a non-zero exit, output to copy.
  SessionPage.prototype.loadBlocks = function (base) {
    var self = this;
    return api(base + "/blocks").then(function (res) {
      var blocks = res.blocks || [];
      if (!blocks.length) return;
      var items = blocks.map(function (b) {
        var bad = b.exitCode !== undefined && b.exitCode !== 0;
        var jump = el("button", { type: "button", cls: "ui-block-jump", text: "$ " + b.command });
        jump.addEventListener("click", function () {
          api(base + "/seek?seq=" + (b.toSeq || b.fromSeq)).then(function (r) { return self.player.seekTo(r.play_ms, b.toSeq || b.fromSeq); });
        });
        var copy = el("button", { type: "button", cls: "ui-block-copy", text: "copy output" });
        copy.addEventListener("click", function () {
          fetch(base + "/blocks/" + b.index + "/output", { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (text) {
            copy.dataset.copied = text;
            if (global.navigator.clipboard) global.navigator.clipboard.writeText(text).catch(function () {});
            copy.textContent = "copied";
          });
        });
        var code = b.exitCode !== undefined ? "exit " + b.exitCode : b.endedAt ? "" : "running";
        return el("li", { cls: "ui-block" + (bad ? " ui-bad" : ""), "data-index": String(b.index) }, [
          jump, el("span", { cls: "ui-block-exit", text: code }), el("span", { cls: "ui-num", text: fmtDuration(b.durationMs) }), copy,
        ]);
      });
      self.root.querySelector(".ui-session").appendChild(el("ol", { cls: "ui-blocks", "aria-label": "Commands" }, items));
      document.body.dataset.blocks = String(blocks.length);
    }).catch(function () {});
  };

  SessionPage.prototype.say = function (text, bad) {
    this.notice.textContent = text;
    this.notice.className = "ui-notice" + (bad ? " ui-bad" : "");
  };

  SessionPage.prototype.refresh = function () {
    var self = this;
    return api("/api/v1/sessions/" + encodeURIComponent(this.id)).then(function (s) {
      self.session = s;
      self.renderHead();
      if (self.player) {
        self.player.session = s;
        self.player.ui.meta.textContent = "";
        self.player._renderMeta();
        self.player._updateUi();
        self.player._settled();
      }
    });
  };

  SessionPage.prototype.renderHead = function () {
    var self = this, s = this.session, base = "/api/v1/sessions/" + encodeURIComponent(s.sessionId);
    var pin = el("button", { type: "button", cls: "ui-button ui-pin-button", "aria-pressed": s.pinned ? "true" : "false", text: s.pinned ? "★ Pinned" : "☆ Pin" });
    pin.addEventListener("click", function () {
      api(base + "/pin", { method: s.pinned ? "DELETE" : "POST" }).then(function (updated) {
        self.session = updated;
        self.renderHead();
      }, function (err) { self.say("Could not pin: " + err.message, true); });
    });
    var exports = [["html", "HTML"], ["asciicast", "asciicast"], ["ndjson", "NDJSON"]].map(function (f) {
      return el("a", { cls: "ui-button ui-export", href: base + "/export?" + qs({ format: f[0], download: "1" }), download: "", text: "⤓ " + f[1] });
    });
    this.live = el("span", { cls: "ui-live" });
    this.head.replaceChildren(
      el("a", { href: "/ui/", cls: "ui-back", text: "← Sessions" }),
      badge(shownState(s)),
      this.live,
      el("span", { cls: "ui-spacer" }),
      pin
    );
    exports.forEach(function (a) { self.head.appendChild(a); });
  };

  // questions sessions wait on (protected contexts, plans that pause) ------------------------------

  function ApprovalBanner(root, sessionId) {
    // Polls the open questions (of one session, or all) and offers their choices as buttons.
    this.root = root;
    this.sid = sessionId || null;
    this.box = el("div", { cls: "ui-approvals", role: "alert" });
    root.insertBefore(this.box, root.firstChild);
    this.load();
  }

  ApprovalBanner.prototype.load = function () {
    var self = this;
    var url = this.sid ? "/api/v1/sessions/" + encodeURIComponent(this.sid) + "/approvals" : "/api/v1/approvals";
    api(url).then(function (res) {
      self.render(res.pending || []);
      self.timer = setTimeout(function () { self.load(); }, 1000);
    }, function () {
      self.timer = setTimeout(function () { self.load(); }, 3000);
    });
  };

  ApprovalBanner.prototype.render = function (pending) {
    var self = this;
    var key = JSON.stringify(pending.map(function (q) { return [q.sessionId, q.n]; }));
    if (key === this.shown) return; // keep the buttons under the pointer
    this.shown = key;
    this.box.replaceChildren.apply(this.box, pending.map(function (q) {
      var said = el("span", { cls: "ui-approval-status" });
      var buttons = q.choices.map(function (c, i) {
        var b = el("button", { type: "button", cls: "ui-button ui-approval-choice" + (i === 0 ? " ui-approval-first" : ""), text: c });
        b.dataset.choice = c;
        b.addEventListener("click", function () {
          buttons.forEach(function (x) { x.disabled = true; });
          var url = "/api/v1/sessions/" + encodeURIComponent(q.sessionId) + "/approvals/" + q.n;
          api(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ choice: c, who: "replay UI" }) })
            .then(function () { said.textContent = c; self.shown = null; self.load(); },
              function (err) { said.textContent = err.message; said.className = "ui-approval-status ui-bad"; });
        });
        return b;
      });
      var title = self.sid ? [] : [el("a", { cls: "ui-title", href: sessionPath(q.sessionId), text: q.sessionId }), " "];
      var row = el("div", { cls: "ui-approval" }, title.concat([el("span", { cls: "ui-approval-question", text: q.question })], buttons, [said]));
      row.dataset.session = q.sessionId;
      row.dataset.n = String(q.n);
      return row;
    }));
  };

  // start ----------------------------------------------------------------------------------------

  function start() {
    var root = document.getElementById("app");
    var m = /^\/ui\/s\/([^/]+)$/.exec(global.location.pathname);
    var sid = m ? decodeURIComponent(m[1]) : null;
    if (m) new SessionPage(root, sid);
    else new ListPage(root);
    global.ktlApprovals = new ApprovalBanner(root, sid);
  }

  global.KtlRemotePlayer = RemotePlayer;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(window);
