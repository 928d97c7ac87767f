/* Parallel coordinates drawn by the page, without WebGL: the lines on a <canvas>, the axes, ticks, brushes and
   color bar in SVG. Drag along an axis to select a range (brushing; a click on the axis clears it); drag an axis
   title sideways to move the axis. From the keyboard each axis is a focusable slider: arrow up/down select or
   move a range, shift+arrows widen/narrow it, Escape clears it, left/right go to the neighbouring axis.
   Handles a few thousand lines in milliseconds in any browser. */
"use strict";
(() => {
  const NS = "http://www.w3.org/2000/svg";
  const M = { l: 70, r: 110, t: 56, b: 28 };
  const BUCKETS = 32; // lines are stroked per color bucket: one canvas path each

  function svg(tag, attrs = {}, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  const viridis = (t) => Assay.viridis(t), ticks = (lo, hi) => Assay.ticks(lo, hi); // charts.js

  const finite = (v) => typeof v === "number" && isFinite(v);

  class Parcoords {
    /** div: the host element; opts.onBrush(dimensions) is called whenever a brushed range changes. */
    constructor(div, opts = {}) {
      this.div = div;
      this.onBrush = opts.onBrush || (() => {});
      this.dimensions = [];
      this.color = { values: [], reverse: false, title: "" };
      this.canvas = document.createElement("canvas");
      this.canvas.className = "parcoords-lines";
      this.svg = svg("svg", { class: "parcoords" });
      Object.assign(this.canvas.style, { position: "absolute", left: "0", top: "0" });
      Object.assign(this.svg.style, { position: "absolute", left: "0", top: "0", overflow: "visible", touchAction: "none" });
      div.style.position = "relative";
      div.replaceChildren(this.canvas, this.svg);
      div.parcoords = this;
      this.resize = new ResizeObserver(() => this.draw());
      this.resize.observe(div);
    }

    destroy() { this.resize.disconnect(); delete this.div.parcoords; this.div.replaceChildren(); }

    /**
     * dims: [{label, values, range?, tickvals?, ticktext?, constraintrange?}] (one value per line, null = missing);
     * color: {values, reverse, title} (the metric that colors the lines).
     */
    setData(dims, color, theme) {
      this.dimensions = dims.map((d) => {
        const vals = d.values.filter(finite);
        let [lo, hi] = d.range || (vals.length ? [Math.min(...vals), Math.max(...vals)] : [0, 1]);
        if (!(hi > lo)) { const pad = Math.abs(lo) * 0.5 || 1; lo -= pad; hi += pad; }
        return Object.assign({}, d, { range: [lo, hi] });
      });
      this.color = color;
      this.theme = theme;
      this.draw();
    }

    get lines() { return this.dimensions.length ? this.dimensions[0].values.length : 0; }

    /** Lines inside every brushed range. */
    selected() {
      const active = this.dimensions.filter((d) => d.constraintrange);
      const out = new Uint8Array(this.lines).fill(1);
      for (const d of active) {
        const [lo, hi] = d.constraintrange;
        d.values.forEach((v, i) => { if (!(finite(v) && v >= lo && v <= hi)) out[i] = 0; });
      }
      return { mask: out, any: active.length > 0 };
    }

    geometry() {
      const w = this.div.clientWidth, h = this.div.clientHeight, n = this.dimensions.length;
      const x = (i) => (n === 1 ? (M.l + w - M.r) / 2 : M.l + (i * (w - M.l - M.r)) / (n - 1));
      const y = (d, v) => M.t + (1 - (v - d.range[0]) / (d.range[1] - d.range[0])) * (h - M.t - M.b);
      const inv = (d, py) => d.range[0] + (1 - (py - M.t) / (h - M.t - M.b)) * (d.range[1] - d.range[0]);
      return { w, h, x, y, inv };
    }

    draw() {
      const { w, h } = this.geometry();
      if (!w || !h || !this.dimensions.length) return;
      this.drawLines();
      this.drawAxes();
      this.svg.setAttribute("width", w);
      this.svg.setAttribute("height", h);
    }

    drawLines() {
      const { w, h, x, y } = this.geometry();
      const ratio = window.devicePixelRatio || 1;
      const c = this.canvas;
      c.width = Math.round(w * ratio); c.height = Math.round(h * ratio);
      c.style.width = w + "px"; c.style.height = h + "px";
      const g = c.getContext("2d");
      g.setTransform(ratio, 0, 0, ratio, 0, 0);
      g.clearRect(0, 0, w, h);
      const dims = this.dimensions, n = this.lines;
      const cv = this.color.values.filter(finite);
      const clo = cv.length ? Math.min(...cv) : 0, chi = cv.length ? Math.max(...cv) : 1;
      const { mask, any } = this.selected();
      const path = (i) => {
        let pen = false;
        for (let k = 0; k < dims.length; k++) {
          const v = dims[k].values[i];
          if (!finite(v)) { pen = false; continue; }
          const px = x(k), py = y(dims[k], v);
          if (pen) g.lineTo(px, py); else { g.moveTo(px, py); pen = true; }
        }
      };
      g.lineWidth = 1;
      if (any) { // unselected lines: faint, underneath
        g.strokeStyle = this.theme && this.theme.muted ? this.theme.muted : "#999";
        g.globalAlpha = 0.18;
        g.beginPath();
        for (let i = 0; i < n; i++) if (!mask[i]) path(i);
        g.stroke();
      }
      const buckets = Array.from({ length: BUCKETS }, () => []);
      for (let i = 0; i < n; i++) {
        if (!mask[i]) continue;
        let t = chi > clo && finite(this.color.values[i]) ? (this.color.values[i] - clo) / (chi - clo) : 0.5;
        if (this.color.reverse) t = 1 - t;
        buckets[Math.min(BUCKETS - 1, Math.floor(t * BUCKETS))].push(i);
      }
      g.globalAlpha = n > 300 ? 0.45 : 0.75;
      buckets.forEach((rows, b) => {
        if (!rows.length) return;
        g.strokeStyle = viridis((b + 0.5) / BUCKETS);
        g.beginPath();
        for (const i of rows) path(i);
        g.stroke();
      });
      g.globalAlpha = 1;
      this.scale = { lo: clo, hi: chi };
    }

    drawAxes() {
      const { w, h, x, y } = this.geometry();
      const t = this.theme || {};
      const fg = t.fg || "#222", muted = t.muted || "#666", border = t.border || "#ccc", accent = t.accent || "#0550ae";
      const focused = this.svg.contains(document.activeElement) ? document.activeElement.getAttribute("data-label") : null;
      const root = svg("g", { "font-size": "11", fill: fg });
      this.dimensions.forEach((d, k) => {
        const g = svg("g", { class: "axis", transform: `translate(${x(k)},0)`, tabindex: 0, role: "slider",
          "aria-orientation": "vertical", "data-label": d.label,
          "aria-label": `${d.label} axis: arrow up or down selects a range, shift with arrows widens or narrows it, Escape clears it` });
        g.append(svg("rect", { class: "axis-focus", x: -16, y: M.t - 42, width: 32, height: h - M.t - M.b + 46, rx: 4,
          fill: "none", stroke: t.accent || accent, "stroke-width": 2 }));
        g.append(svg("line", { x1: 0, x2: 0, y1: M.t, y2: h - M.b, stroke: fg, "stroke-width": 1 }));
        const tv = d.tickvals || ticks(d.range[0], d.range[1]);
        tv.forEach((v, j) => {
          if (v < d.range[0] - 1e-9 || v > d.range[1] + 1e-9) return;
          const py = y(d, v);
          g.append(svg("line", { x1: -4, x2: 0, y1: py, y2: py, stroke: fg }));
          g.append(svg("text", { x: -7, y: py + 4, "text-anchor": "end", fill: fg, stroke: t.bg || "#fff", "stroke-width": 3,
            "paint-order": "stroke" }, d.ticktext ? d.ticktext[j] : Assay.fmt(v, 3)));
        });
        g.append(svg("rect", { class: "brush-range", x: -6, width: 12, fill: accent, "fill-opacity": 0.35, stroke: accent }));
        this.placeBrush(g, d, y);
        const title = svg("text", { class: "axis-title", x: 0, y: M.t - 26, "text-anchor": "middle", "font-size": "12",
          "font-weight": "600", fill: fg, style: "cursor: ew-resize" }, d.label);
        const range = svg("text", { x: 0, y: M.t - 10, "text-anchor": "middle", fill: muted },
          d.ticktext ? "" : `${Assay.fmt(d.range[0], 3)} – ${Assay.fmt(d.range[1], 3)}`);
        const brush = svg("rect", { class: "axis-brush", x: -12, width: 24, y: M.t, height: h - M.t - M.b,
          fill: "transparent", style: "cursor: crosshair" });
        g.append(title, range, brush);
        this.brushing(brush, g, d);
        this.moving(title, g, k);
        this.keyboard(g, d);
        this.describe(g, d);
        root.append(g);
      });
      // the color bar
      const cx = w - M.r + 54, top = M.t, bot = h - M.b;
      const grad = svg("linearGradient", { id: "pc-grad-" + this.div.id, x1: 0, x2: 0, y1: 1, y2: 0 });
      [0, 1, 2, 3, 4, 5, 6, 7, 8].forEach((i) => {
        const f = i / 8;
        grad.append(svg("stop", { offset: f, "stop-color": viridis(this.color.reverse ? 1 - f : f) }));
      });
      const s = this.scale || { lo: 0, hi: 1 };
      const bar = svg("g", { "aria-hidden": "true" });
      root.append(bar);
      bar.append(svg("defs", {}), svg("rect", { x: cx, y: top, width: 14, height: bot - top, fill: `url(#pc-grad-${this.div.id})`,
        stroke: border }),
      svg("text", { x: cx + 18, y: top + 4, fill: fg }, Assay.fmt(s.hi, 4)),
      svg("text", { x: cx + 18, y: bot + 4, fill: fg }, Assay.fmt(s.lo, 4)),
      svg("text", { x: cx + 7, y: top - 10, "text-anchor": "middle", "font-weight": "600", fill: fg }, this.color.title || ""));
      bar.querySelector("defs").append(grad);
      this.svg.replaceChildren(root);
      if (focused) [...root.querySelectorAll(".axis")].find((a) => a.getAttribute("data-label") === focused)?.focus();
    }

    /** Show (or hide) the brushed range of axis group g. */
    placeBrush(g, d, y) {
      const r = g.querySelector(".brush-range");
      if (!d.constraintrange) { r.setAttribute("display", "none"); return; }
      const [lo, hi] = d.constraintrange;
      const top = y(d, Math.min(hi, d.range[1])), bot = y(d, Math.max(lo, d.range[0]));
      r.removeAttribute("display");
      r.setAttribute("y", top);
      r.setAttribute("height", Math.max(bot - top, 1));
    }

    /** Drag along an axis: select [lo, hi]; a click without a drag clears the axis's range. While dragging only
        the lines and this axis's range are redrawn (the axes stay, so the pointer capture holds). */
    brushing(rect, g, d) {
      rect.addEventListener("pointerdown", (ev) => {
        ev.preventDefault();
        rect.setPointerCapture(ev.pointerId);
        const { y, inv } = this.geometry();
        const top = this.svg.getBoundingClientRect().top;
        const y0 = ev.clientY - top;
        let moved = false;
        const clamp = (v) => Math.min(Math.max(v, d.range[0]), d.range[1]);
        const move = (e) => {
          const y1 = e.clientY - top;
          if (Math.abs(y1 - y0) < 3 && !moved) return;
          moved = true;
          const a = clamp(inv(d, y0)), b = clamp(inv(d, y1));
          d.constraintrange = [Math.min(a, b), Math.max(a, b)];
          this.drawLines();
          this.placeBrush(g, d, y);
        };
        const up = (e) => {
          rect.removeEventListener("pointermove", move);
          rect.removeEventListener("pointerup", up);
          if (!moved) delete d.constraintrange; else move(e);
          this.draw();
          this.onBrush(this.dimensions);
        };
        rect.addEventListener("pointermove", move);
        rect.addEventListener("pointerup", up);
      });
    }

    /** The axis's slider value for assistive technology: the middle of its range and the range in words. */
    describe(g, d) {
      const cr = d.constraintrange, f = (v) => Assay.fmt(v, 3);
      g.setAttribute("aria-valuemin", d.range[0]);
      g.setAttribute("aria-valuemax", d.range[1]);
      g.setAttribute("aria-valuenow", cr ? (cr[0] + cr[1]) / 2 : d.range[0]);
      let text = "no range selected";
      if (cr && d.ticktext) text = d.ticktext.filter((_, i) => i >= cr[0] && i <= cr[1]).join(", ") || "no category";
      else if (cr) text = `${f(cr[0])} to ${f(cr[1])}`;
      g.setAttribute("aria-valuetext", text);
    }

    /** Keyboard brushing on a focused axis. Numeric axes step by a twentieth of their span (a new range is the
        middle fifth); category axes by one category (a new range holds the middle one). */
    keyboard(g, d) {
      g.addEventListener("keydown", (ev) => {
        const [lo, hi] = d.range, cat = !!d.ticktext;
        const step = cat ? 1 : (hi - lo) / 20;
        let cr = d.constraintrange ? d.constraintrange.slice() : null;
        if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
          const axes = [...this.svg.querySelectorAll(".axis")], i = axes.indexOf(g);
          axes[Math.min(Math.max(i + (ev.key === "ArrowRight" ? 1 : -1), 0), axes.length - 1)].focus();
          ev.preventDefault();
          return;
        }
        if (ev.key === "Escape") {
          if (!cr) return;
          cr = null;
        } else if (ev.key === "ArrowUp" || ev.key === "ArrowDown") {
          const dir = ev.key === "ArrowUp" ? 1 : -1;
          const bottom = cat ? -0.4 : lo, top = cat ? d.ticktext.length - 1 + 0.4 : hi;
          if (!cr) {
            const c = cat ? Math.round((d.ticktext.length - 1) / 2) : (lo + hi) / 2, half = cat ? 0.4 : (hi - lo) / 10;
            cr = [c - half, c + half];
          } else if (ev.shiftKey) { // widen (up) or narrow (down) on both sides, never below one step
            const grow = dir * (cat ? 1 : step / 2), min = cat ? 0.8 : step;
            if (cr[1] - cr[0] + 2 * grow >= min - 1e-12) cr = [Math.max(cr[0] - grow, bottom), Math.min(cr[1] + grow, top)];
          } else { // move, stopping at the ends of the axis
            const by = dir > 0 ? Math.min(step, top - cr[1]) : -Math.min(step, cr[0] - bottom);
            cr = [cr[0] + by, cr[1] + by];
          }
        } else return;
        ev.preventDefault();
        if (cr) d.constraintrange = cr.map((v) => +v.toPrecision(12)); else delete d.constraintrange;
        this.drawLines();
        this.placeBrush(g, d, this.geometry().y);
        this.describe(g, d);
        this.onBrush(this.dimensions);
      });
    }

    /** Drag an axis title sideways to move the axis (its lines follow). */
    moving(title, group, k) {
      title.addEventListener("pointerdown", (ev) => {
        ev.preventDefault();
        title.setPointerCapture(ev.pointerId);
        const { x } = this.geometry();
        const left = this.svg.getBoundingClientRect().left;
        let to = x(k);
        const move = (e) => { to = e.clientX - left; group.setAttribute("transform", `translate(${to},0)`); };
        const up = () => {
          title.removeEventListener("pointermove", move);
          title.removeEventListener("pointerup", up);
          const n = this.dimensions.length;
          let j = 0;
          while (j < n - 1 && to > (x(j) + x(j + 1)) / 2) j++;
          if (j !== k) { const [d] = this.dimensions.splice(k, 1); this.dimensions.splice(j, 0, d); }
          this.draw();
        };
        title.addEventListener("pointermove", move);
        title.addEventListener("pointerup", up);
      });
    }
  }

  Assay.Parcoords = Parcoords;
})();
