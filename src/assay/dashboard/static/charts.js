/* Small SVG charts drawn by the page itself (convergence, importance, slice, contour, Pareto front): they need
   no Plotly.js, so a browser's first visit draws them without parsing and compiling its 1.5 MB first.
   Markers, lines (straight or steps, with or without markers), horizontal bars, heatmaps with isolines (contour)
   and dashed threshold lines on linear, log or category axes; a legend; the nearest value shown on hover;
   colors from the page's CSS (light and dark).
   Each series' <g> carries data-name and data-points (how many values it draws); div.chart holds the spec.
   A chart's "Zoom / export" button (button.chart-zoom, aria-controls = its div) loads Plotly.js on that click and
   redraws the same spec with it (zoom, pan, autoscale, PNG download); live data goes to that view while it is open. */
"use strict";
(() => {
  const NS = "http://www.w3.org/2000/svg";
  const finite = (v) => typeof v === "number" && isFinite(v);

  function svg(tag, attrs = {}, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  /** About five round tick values between lo and hi. */
  function ticks(lo, hi, count = 5) {
    const span = hi - lo;
    if (!(span > 0)) return [lo];
    const raw = span / count, mag = 10 ** Math.floor(Math.log10(raw)), r = raw / mag;
    const step = (r >= 7.5 ? 10 : r >= 3.5 ? 5 : r >= 1.5 ? 2 : 1) * mag;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : +v.toPrecision(12));
    return out;
  }

  /** A scale for one axis: spec {type: linear|log|category, categories, zero}, values it must show, pixel range. */
  function scale(spec, values, p0, p1) {
    if (spec.type === "category") {
      const cats = spec.categories || [...new Set(values.map(String))];
      const step = (p1 - p0) / Math.max(cats.length, 1), band = Math.abs(step);
      const at = (v) => p0 + step * (cats.indexOf(String(v)) + 0.5);
      return { at, band, ticks: cats.map((c) => ({ v: c, p: at(c), label: c })), cats };
    }
    const log = spec.type === "log";
    const t = (v) => (log ? Math.log10(v) : v);
    const vs = values.filter((v) => finite(v) && (!log || v > 0)).map(t);
    let lo = vs.length ? Math.min(...vs) : 0, hi = vs.length ? Math.max(...vs) : 1;
    if (spec.zero) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
    if (!(hi > lo)) { const pad = Math.abs(lo) * 0.5 || 1; lo -= pad; hi += pad; }
    const pad = spec.tight ? 0 : (hi - lo) * 0.04;
    if (!(spec.zero && lo === 0)) lo -= pad;
    hi += pad;
    const at = (v) => p0 + ((t(v) - lo) / (hi - lo)) * (p1 - p0);
    let tv;
    if (log) {
      tv = [];
      for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) tv.push(10 ** e);
      if (tv.length < 2) tv = ticks(lo, hi).map((e) => 10 ** e);
    } else tv = ticks(lo, hi);
    return { at, ticks: tv.map((v) => ({ v, p: at(v), label: Assay.fmt(v, 3) })) };
  }

  // Viridis, 9 evenly spaced stops (the scale Plotly uses)
  const VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"]
    .map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
  /** Viridis at t in [0, 1], as [r, g, b]. */
  function viridisRGB(t) {
    const x = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1), i = Math.min(Math.floor(x), VIRIDIS.length - 2), f = x - i;
    return VIRIDIS[i].map((v, k) => Math.round(v + (VIRIDIS[i + 1][k] - v) * f));
  }
  const viridis = (t) => `rgb(${viridisRGB(t).join(",")})`;

  /** Marching squares: the segments where grid z (rows along y) crosses level, in fractional grid indices. */
  function isoline(z, level) {
    const segs = [];
    for (let j = 0; j + 1 < z.length; j++) {
      for (let i = 0; i + 1 < z[j].length; i++) {
        const c = [[i, j, z[j][i]], [i + 1, j, z[j][i + 1]], [i + 1, j + 1, z[j + 1][i + 1]], [i, j + 1, z[j + 1][i]]];
        const pts = [];
        for (let e = 0; e < 4; e++) {
          const [x0, y0, a] = c[e], [x1, y1, b] = c[(e + 1) % 4];
          if (!finite(a) || !finite(b) || (a < level) === (b < level)) continue;
          const t = (level - a) / (b - a);
          pts.push([x0 + t * (x1 - x0), y0 + t * (y1 - y0)]);
        }
        if (pts.length >= 2) segs.push([pts[0], pts[1]]);
        if (pts.length === 4) segs.push([pts[2], pts[3]]);
      }
    }
    return segs;
  }

  const MARK = { circle: (x, y, r) => svg("circle", { cx: x, cy: y, r }),
    x: (x, y, r) => svg("path", { d: `M${x - r},${y - r}L${x + r},${y + r}M${x - r},${y + r}L${x + r},${y - r}`, "stroke-width": 1.6 }) };

  class Chart {
    /** div: the host element (its role="img" and aria-label are set from spec.label). */
    constructor(div) {
      this.div = div;
      this.svg = svg("svg", { class: "chart", "aria-hidden": "true" });
      this.tip = document.createElement("div");
      this.tip.className = "chart-tip";
      this.tip.hidden = true;
      div.style.position = "relative";
      div.replaceChildren(this.svg, this.tip);
      div.chart = this;
      this.spec = null;
      this.width = 0;
      this.pdiv = null; // the Plotly.js view, while it is open
      this.resize = new ResizeObserver(() => { if (!this.pdiv && this.div.clientWidth !== this.width) this.draw(); });
      this.resize.observe(div);
      this.svg.addEventListener("pointermove", (e) => this.hover(e));
      this.svg.addEventListener("pointerleave", () => this.unhover());
    }

    destroy() { this.closePlotly(); this.resize.disconnect(); delete this.div.chart; this.div.replaceChildren(); }

    /**
     * spec: {x: axis, y: axis, series: [...], label}. An axis: {title, type: "linear"|"log"|"category", categories,
     * zero}. A series: {name, kind: "markers"|"line"|"hbar", x, y, text (the hover line: an array, or a function of the index), color, symbol (a name or one
     * per point), colors (one per point), step and markers (lines: a marker size), size, opacity, hover (false: none)}.
     * "hbar" draws bars from 0 to x along a category y axis. spec.rules: [{axis: "x"|"y", value, color}], dashed lines.
     */
    setData(spec) {
      this.spec = spec;
      if (spec.label) this.div.setAttribute("aria-label", spec.label);
      if (this.pdiv) { // the interactive view is open: it shows the new data (keeping the user's zoom)
        this.drawPlotly().catch((e) => { this.closePlotly(); const msg = document.getElementById("msg"); if (msg) Assay.message(msg, e.message); });
      }
      else this.draw();
    }

    draw() {
      const s = this.spec, w = this.div.clientWidth, h = this.div.clientHeight;
      this.width = w;
      if (!s || !w || !h) return;
      const th = Assay.theme();
      const rule = (a) => (s.rules || []).filter((r) => r.axis === a).map((r) => r.value);
      const xs = s.series.flatMap((q) => q.x).concat(rule("x")), ys = s.series.flatMap((q) => q.y).concat(rule("y"));
      const legend = s.series.length > 1;
      // the left margin fits the longest y tick label
      const probe = scale(s.y, ys, 0, 1);
      const longest = Math.max(1, ...probe.ticks.map((t) => String(t.label).length));
      const heat = s.series.find((q) => q.kind === "heatmap");
      const m = { l: Math.min(40 + longest * 7, 160), r: heat ? 96 : 16, t: legend ? 34 : 12, b: 46 };
      const X = scale(s.x, xs, m.l, w - m.r), Y = scale(s.y, ys, h - m.b, m.t);
      this.X = X; this.Y = Y; this.m = m;
      const root = svg("g", { "font-size": 12, fill: th.fg });
      // grid and ticks
      const grid = svg("g", { stroke: th.border, "stroke-width": 1 });
      const labels = svg("g", { fill: th.fg });
      for (const t of X.ticks) {
        if (s.x.type !== "category") grid.append(svg("line", { x1: t.p, x2: t.p, y1: m.t, y2: h - m.b }));
        labels.append(svg("text", { x: t.p, y: h - m.b + 16, "text-anchor": "middle" }, t.label));
      }
      for (const t of Y.ticks) {
        if (s.y.type !== "category") grid.append(svg("line", { x1: m.l, x2: w - m.r, y1: t.p, y2: t.p }));
        labels.append(svg("text", { x: m.l - 7, y: t.p + 4, "text-anchor": "end" }, t.label));
      }
      grid.append(svg("line", { x1: m.l, x2: m.l, y1: m.t, y2: h - m.b, stroke: th.fg, "stroke-opacity": 0.5 }),
        svg("line", { x1: m.l, x2: w - m.r, y1: h - m.b, y2: h - m.b, stroke: th.fg, "stroke-opacity": 0.5 }));
      root.append(grid, labels);
      if (s.x.title) root.append(svg("text", { class: "axis-title", x: (m.l + w - m.r) / 2, y: h - 8, "text-anchor": "middle" }, s.x.title));
      if (s.y.title && s.y.type !== "category") {
        root.append(svg("text", { class: "axis-title", transform: `translate(14,${(m.t + h - m.b) / 2}) rotate(-90)`,
          "text-anchor": "middle" }, s.y.title));
      }
      // series
      s.series.forEach((q, k) => {
        const color = q.color || Assay.COLORS[k % Assay.COLORS.length];
        const g = svg("g", { class: `series ${q.kind}`, "data-name": q.name, "data-points": q.x.length });
        if (q.kind === "heatmap") this.drawHeatmap(g, q, X, Y, m, w, h, th);
        else if (q.kind === "hbar") {
          const x0 = X.at(0);
          q.y.forEach((cat, i) => {
            const x1 = X.at(q.x[i]), yc = Y.at(cat), bh = Y.band * 0.7;
            g.append(svg("rect", { class: "bar", x: Math.min(x0, x1), y: yc - bh / 2, width: Math.max(Math.abs(x1 - x0), 1),
              height: bh, fill: color }));
          });
        } else if (q.kind === "line") {
          let d = "";
          q.x.forEach((xv, i) => {
            if (!finite(q.y[i])) return;
            const px = X.at(xv), py = Y.at(q.y[i]);
            if (!d) d = `M${px},${py}`;
            else d += q.step ? `H${px}V${py}` : `L${px},${py}`;
          });
          g.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": q.width || 2.5, "stroke-linejoin": "round" }));
          if (q.markers) q.x.forEach((xv, i) => {
            if (finite(q.y[i])) g.append(svg("circle", { class: "point", cx: X.at(xv), cy: Y.at(q.y[i]), r: q.markers / 2, fill: color }));
          });
        } else {
          Object.assign(g.style, { fill: color, stroke: color });
          g.setAttribute("fill-opacity", q.opacity ?? 0.6);
          const r = (q.size || 6) / 2;
          q.x.forEach((xv, i) => {
            if (!finite(q.y[i])) return;
            const sym = Array.isArray(q.symbol) ? q.symbol[i] : q.symbol || "circle";
            const e = (MARK[sym] || MARK.circle)(X.at(xv), Y.at(q.y[i]), r);
            e.setAttribute("class", "point");
            if (q.colors) e.style.fill = e.style.stroke = q.colors[i];
            g.append(e);
          });
        }
        root.append(g);
      });
      for (const rule of s.rules || []) { // threshold lines across the plot
        const at = rule.axis === "x" ? X.at(rule.value) : Y.at(rule.value);
        root.append(svg("line", Object.assign({ class: "rule", stroke: rule.color || th.bad, "stroke-width": 2, "stroke-dasharray": "6 4" },
          rule.axis === "x" ? { x1: at, x2: at, y1: m.t, y2: h - m.b } : { x1: m.l, x2: w - m.r, y1: at, y2: at })));
      }
      if (legend && !heat) {
        let lx = m.l;
        const lg = svg("g", { class: "legend" });
        s.series.forEach((q, k) => {
          const color = q.color || Assay.COLORS[k % Assay.COLORS.length];
          lg.append(q.kind === "line" ? svg("line", { x1: lx, x2: lx + 22, y1: 14, y2: 14, stroke: color, "stroke-width": 2.5 })
            : svg("circle", { cx: lx + 11, cy: 14, r: 4, fill: color }));
          const label = svg("text", { x: lx + 28, y: 18 }, q.name);
          lg.append(label);
          lx += 40 + 7 * q.name.length;
        });
        root.append(lg);
      }
      this.ring = svg("circle", { r: 6, fill: "none", stroke: th.fg, "stroke-width": 2, display: "none" });
      root.append(this.ring);
      this.svg.setAttribute("width", w);
      this.svg.setAttribute("height", h);
      this.svg.replaceChildren(root);
      this.div.dataset.drawn = "true";
    }

    /** A heatmap of grid q.z (rows along q.y) with isolines at q.levels - 1 evenly spaced values, and a color bar. */
    drawHeatmap(g, q, X, Y, m, w, h, th) {
      const nx = q.x.length, ny = q.y.length, zs = q.z.flat().filter(finite);
      const lo = Math.min(...zs), hi = Math.max(...zs), span = hi - lo || 1;
      const tone = (v) => (q.reverse ? 1 - (v - lo) / span : (v - lo) / span);
      const c = document.createElement("canvas");
      c.width = nx; c.height = ny;
      const img = c.getContext("2d").createImageData(nx, ny);
      q.z.forEach((row, j) => row.forEach((v, i) => {
        img.data.set([...(finite(v) ? viridisRGB(tone(v)) : [128, 128, 128]), 255], ((ny - 1 - j) * nx + i) * 4);
      }));
      c.getContext("2d").putImageData(img, 0, 0);
      // pixel centers on the grid points: the picture reaches half a cell past them, clipped to the plot area
      const x0 = X.at(q.x[0]), x1 = X.at(q.x[nx - 1]), y0 = Y.at(q.y[0]), y1 = Y.at(q.y[ny - 1]);
      const cw = (x1 - x0) / Math.max(nx - 1, 1), ch = (y0 - y1) / Math.max(ny - 1, 1);
      const clip = svg("clipPath", { id: `chart-clip-${this.div.id}` });
      clip.append(svg("rect", { x: m.l, y: m.t, width: w - m.l - m.r, height: h - m.t - m.b }));
      g.append(clip, svg("image", { href: c.toDataURL(), x: x0 - cw / 2, y: y1 - ch / 2, width: x1 - x0 + cw,
        height: y0 - y1 + ch, preserveAspectRatio: "none", "clip-path": `url(#chart-clip-${this.div.id})` }));
      // isolines, in grid coordinates mapped linearly to pixels (the grid is even on the axes' scale)
      const px = (fi) => (x0 + fi * cw).toFixed(1), py = (fj) => (y0 - fj * ch).toFixed(1);
      const levels = q.levels || 10;
      let d = "";
      for (let k = 1; k < levels; k++) {
        for (const [a, b] of isoline(q.z, lo + (k * span) / levels)) d += `M${px(a[0])},${py(a[1])}L${px(b[0])},${py(b[1])}`;
      }
      g.append(svg("path", { class: "isolines", d, fill: "none", stroke: "#fff", "stroke-opacity": 0.45, "stroke-width": 1,
        "clip-path": `url(#chart-clip-${this.div.id})` }));
      // the color bar
      const bx = w - m.r + 18, top = m.t, bot = h - m.b, gid = `chart-grad-${this.div.id}`;
      const grad = svg("linearGradient", { id: gid, x1: 0, x2: 0, y1: 1, y2: 0 });
      for (let k = 0; k <= 8; k++) grad.append(svg("stop", { offset: k / 8, "stop-color": viridis(q.reverse ? 1 - k / 8 : k / 8) }));
      const defs = svg("defs");
      defs.append(grad);
      const bar = svg("g", { class: "colorbar" });
      bar.append(defs, svg("rect", { x: bx, y: top, width: 14, height: bot - top, fill: `url(#${gid})`, stroke: th.border }));
      for (const t of ticks(lo, hi, 4)) {
        const y = bot - ((t - lo) / span) * (bot - top);
        bar.append(svg("line", { x1: bx + 14, x2: bx + 18, y1: y, y2: y, stroke: th.fg }),
          svg("text", { x: bx + 21, y: y + 4, fill: th.fg }, Assay.fmt(t, 3)));
      }
      bar.append(svg("text", { x: bx + 7, y: top - 2, "text-anchor": "middle", "font-weight": 600, fill: th.fg }, q.name));
      g.append(bar);
      this.grid = { q, x0, y0, cw, ch };
    }

    /** The value nearest the pointer (within 30 px; bars: the one under it), shown in a tooltip. */
    hover(ev) {
      const s = this.spec;
      if (!s || !this.X) return;
      const r = this.svg.getBoundingClientRect(), px = ev.clientX - r.left, py = ev.clientY - r.top;
      let best = null, bestD = 30 * 30;
      s.series.forEach((q) => {
        if (q.hover === false || q.kind === "heatmap") return;
        if (q.kind === "hbar") {
          q.y.forEach((cat, i) => { if (Math.abs(this.Y.at(cat) - py) < this.Y.band / 2) best = { q, i, x: this.X.at(q.x[i]), y: this.Y.at(cat) }; });
          return;
        }
        q.x.forEach((xv, i) => {
          if (!finite(q.y[i])) return;
          const x = this.X.at(xv), y = this.Y.at(q.y[i]), d = (x - px) ** 2 + (y - py) ** 2;
          if (d < bestD || (d === bestD && best && best.q.kind === "line")) { bestD = d; best = { q, i, x, y }; }
        });
      });
      if (best && best.q.kind === "hbar" && (px < this.m.l || px > this.div.clientWidth - this.m.r)) best = null;
      const heat = s.series.find((q) => q.kind === "heatmap");
      if (!best && heat && this.grid) { // the grid point under the pointer
        const { x0, y0, cw, ch } = this.grid, i = Math.round((px - x0) / cw), j = Math.round((y0 - py) / ch);
        if (i >= 0 && j >= 0 && i < heat.x.length && j < heat.y.length) best = { q: heat, i: [i, j], x: x0 + i * cw, y: y0 - j * ch };
      }
      if (!best) { this.unhover(); return; }
      const { q, i } = best;
      const text = typeof q.text === "function" ? q.text(i) : q.text ? q.text[i] : `${q.name}: ${Assay.fmt(q.x[i])}, ${Assay.fmt(q.y[i])}`;
      this.tip.textContent = text;
      this.tip.hidden = false;
      const tw = this.tip.offsetWidth;
      this.tip.style.left = `${Math.min(Math.max(best.x + 10, 0), this.div.clientWidth - tw - 4)}px`;
      this.tip.style.top = `${Math.max(best.y - 34, 0)}px`;
      if (q.kind === "hbar" || q.kind === "heatmap") this.ring.setAttribute("display", "none");
      else { this.ring.setAttribute("cx", best.x); this.ring.setAttribute("cy", best.y); this.ring.removeAttribute("display"); }
      this.hovered = { series: q.name, index: i, text };
    }

    unhover() { this.tip.hidden = true; if (this.ring) this.ring.setAttribute("display", "none"); this.hovered = null; }

    /** The spec as Plotly.js traces and layout: same series, colours, axis types and titles, threshold lines. */
    plotly() {
      const s = this.spec, th = Assay.theme();
      const axis = (a) => Object.assign({ title: { text: a.title || "" }, type: a.type || "linear" },
        a.type === "category" && a.categories ? { categoryorder: "array", categoryarray: a.categories } : {},
        a.zero ? { rangemode: "tozero" } : {});
      const text = (q) => q.x.map((_, i) => (typeof q.text === "function" ? q.text(i) : q.text ? q.text[i]
        : `${q.name}: ${Assay.fmt(q.x[i])}, ${Assay.fmt(q.y[i])}`));
      const data = s.series.map((q, k) => {
        const color = q.color || Assay.COLORS[k % Assay.COLORS.length];
        const hover = q.hover === false ? { hoverinfo: "skip" } : { hovertemplate: "%{text}<extra></extra>" };
        if (q.kind === "heatmap") {
          return { type: "contour", name: q.name, x: q.x, y: q.y, z: q.z, colorscale: "Viridis", reversescale: !!q.reverse,
            ncontours: q.levels || 10, contours: { coloring: "heatmap" }, line: { color: "rgba(255,255,255,0.45)", width: 1 },
            colorbar: { title: { text: q.name }, tickfont: { color: th.fg } },
            text: q.y.map((_, j) => q.x.map((_, i) => (q.text ? q.text([i, j]) : Assay.fmt(q.z[j][i])))), hovertemplate: "%{text}<extra></extra>" };
        }
        if (q.kind === "hbar") {
          return Object.assign({ type: "bar", orientation: "h", name: q.name, x: q.x, y: q.y, marker: { color }, text: text(q),
            textposition: "none" }, hover);
        }
        const t = { type: "scatter", name: q.name, x: q.x, y: q.y, text: text(q), ...hover };
        if (q.kind === "line") {
          return Object.assign(t, { mode: q.markers ? "lines+markers" : "lines", line: { color, width: q.width || 2.5, shape: q.step ? "hv" : "linear" },
            marker: { color, size: q.markers || 6 } });
        }
        return Object.assign(t, { mode: "markers", marker: { color: q.colors || color, size: q.size || 6, opacity: q.opacity ?? 0.6,
          symbol: q.symbol || "circle", line: { width: 0 } } });
      });
      const shapes = (s.rules || []).map((r) => Object.assign({ type: "line", line: { color: r.color || th.bad, width: 2, dash: "dash" } },
        r.axis === "x" ? { xref: "x", x0: r.value, x1: r.value, yref: "paper", y0: 0, y1: 1 }
          : { yref: "y", y0: r.value, y1: r.value, xref: "paper", x0: 0, x1: 1 }));
      const lay = Assay.layout({ xaxis: axis(s.x), yaxis: axis(s.y), shapes, showlegend: s.series.length > 1 && !s.series.some((q) => q.kind === "heatmap"),
        uirevision: "keep", margin: { l: 60, r: 20, t: 40, b: 50 } });
      return { data, layout: lay };
    }

    /** Open (or redraw) the interactive Plotly.js view in place of the SVG; Plotly.js must be loaded. */
    drawPlotly() {
      if (!this.pdiv) {
        this.pdiv = document.createElement("div");
        this.pdiv.className = "chart-plotly";
        this.svg.style.display = "none";
        this.unhover();
        this.div.append(this.pdiv);
        this.div.setAttribute("role", "group"); // its content is interactive now, no longer one image
        this.div.dataset.view = "plotly";
      }
      const { data, layout } = this.plotly();
      return Plotly.react(this.pdiv, data, layout, Object.assign({}, Assay.PLOTLY_CONFIG,
        { toImageButtonOptions: { filename: this.div.id.replace(/^plot-/, "assay-") } }));
    }

    /** Back to the SVG drawing. */
    closePlotly() {
      if (!this.pdiv) return;
      Plotly.purge(this.pdiv);
      this.pdiv.remove();
      this.pdiv = null;
      this.svg.style.display = "";
      this.div.setAttribute("role", "img");
      delete this.div.dataset.view;
      const b = buttonOf(this.div);
      if (b) label(b, false);
      this.draw();
    }
  }

  /** A "Zoom / export" button's text and accessible name: it opens the interactive view, or ("Back") closes it. */
  function label(button, open) {
    const name = button.dataset.name || "chart";
    button.textContent = open ? "Back" : "Zoom / export";
    button.setAttribute("aria-label", open ? `Back to the static ${name}` : `Zoom / export the ${name} (interactive Plotly.js view)`);
  }
  const buttonOf = (div) => document.querySelector(`button.chart-zoom[aria-controls="${div.id}"]`);

  /** A "Zoom / export" button (aria-controls: its chart's div): the first click loads Plotly.js and opens the chart in it, the next returns to the SVG. */
  async function toggle(button) {
    const div = document.getElementById(button.getAttribute("aria-controls"));
    const c = div && div.chart;
    if (!c || !c.spec) { label(button, false); return; }
    if (c.pdiv) { c.closePlotly(); return; }
    button.disabled = true;
    try {
      await Assay.loadPlotly();
      if (div.chart === c && c.spec) { await c.drawPlotly(); label(button, true); }
    } catch (e) {
      const msg = document.getElementById("msg");
      if (msg) Assay.message(msg, e.message);
    } finally { button.disabled = false; }
  }
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest && ev.target.closest("button.chart-zoom");
    if (b) toggle(b);
  });

  Assay.Chart = Chart;
  Assay.ticks = ticks;
  Assay.viridis = viridis;
  /** Draw spec into div (an Assay.Chart made on first use). */
  Assay.chart = (div, spec) => {
    if (typeof div === "string") div = document.getElementById(div);
    const c = div.chart || new Chart(div);
    c.setData(spec);
    return c;
  };
})();
