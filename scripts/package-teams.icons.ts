/**
 * The Teams app icons, drawn in code so they are reproducible: a white shield with a tick on the
 * accent colour (color.png, 192x192) and the same shield as a white outline on a transparent
 * background (outline.png, 32x32), as Teams asks. Anti-aliased by supersampling.
 *
 *   node --import tsx scripts/package-teams.icons.ts     rewrites manifest/teams/color.png and outline.png
 *
 * Deterministic: the same code draws the same pixels (test/manifest checks the committed files).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PNG } from 'pngjs';

/** The manifest's accentColor and the colour icon's background. */
export const ACCENT = { hex: '#1F5F8B', rgb: [0x1f, 0x5f, 0x8b] as const };

export const manifestDir = fileURLToPath(new URL('../manifest/teams/', import.meta.url));

type Point = readonly [number, number];

/** Quadratic Bézier from a through control c to b, as points (b included, a not). */
function curve(a: Point, c: Point, b: Point, steps = 24): Point[] {
  const out: Point[] = [];
  for (let i = 1; i <= steps; i++) {
    const t = i / steps;
    const u = 1 - t;
    out.push([u * u * a[0] + 2 * u * t * c[0] + t * t * b[0], u * u * a[1] + 2 * u * t * c[1] + t * t * b[1]]);
  }
  return out;
}

/** A shield in the unit square, scaled about its centre by `scale`. */
function shield(scale = 1): Point[] {
  const top: Point = [0.5, 0.1];
  const rightTop: Point = [0.83, 0.21];
  const rightSide: Point = [0.83, 0.47];
  const bottom: Point = [0.5, 0.92];
  const leftSide: Point = [0.17, 0.47];
  const leftTop: Point = [0.17, 0.21];
  const outline: Point[] = [
    top,
    ...curve(top, [0.66, 0.19], rightTop, 8),
    rightSide,
    ...curve(rightSide, [0.82, 0.78], bottom),
    ...curve(bottom, [0.18, 0.78], leftSide),
    leftTop,
    ...curve(leftTop, [0.34, 0.19], top, 8),
  ];
  const cx = 0.5;
  const cy = 0.5;
  return outline.map(([x, y]) => [cx + (x - cx) * scale, cy + (y - cy) * scale] as const);
}

function inside(polygon: Point[], x: number, y: number): boolean {
  let result = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i]!;
    const [xj, yj] = polygon[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) result = !result;
  }
  return result;
}

function distanceToSegment(x: number, y: number, a: Point, b: Point): number {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const t = Math.max(0, Math.min(1, ((x - a[0]) * dx + (y - a[1]) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(x - (a[0] + t * dx), y - (a[1] + t * dy));
}

const tick: Point[] = [[0.36, 0.5], [0.46, 0.61], [0.65, 0.39]];
const onTick = (x: number, y: number, halfWidth: number) =>
  distanceToSegment(x, y, tick[0]!, tick[1]!) <= halfWidth || distanceToSegment(x, y, tick[1]!, tick[2]!) <= halfWidth;

/** Fraction (0..1) of the pixel at (px, py) of a size×size image where `hit` holds. */
function coverage(size: number, px: number, py: number, hit: (x: number, y: number) => boolean, samples = 4): number {
  let count = 0;
  for (let sy = 0; sy < samples; sy++) {
    for (let sx = 0; sx < samples; sx++) {
      if (hit((px + (sx + 0.5) / samples) / size, (py + (sy + 0.5) / samples) / size)) count++;
    }
  }
  return count / (samples * samples);
}

/** 192x192, opaque: accent background, white shield, tick in the accent colour. */
export function drawColorIcon(): PNG {
  const size = 192;
  const png = new PNG({ width: size, height: size, colorType: 2, inputHasAlpha: true });
  const outer = shield(1);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const white = coverage(size, x, y, (u, v) => inside(outer, u, v) && !onTick(u, v, 0.045));
      const i = (y * size + x) * 4;
      for (let c = 0; c < 3; c++) png.data[i + c] = Math.round(ACCENT.rgb[c]! * (1 - white) + 255 * white);
      png.data[i + 3] = 255;
    }
  }
  return png;
}

/** 32x32, white on transparent: the shield's outline and the tick. Every visible pixel is pure white. */
export function drawOutlineIcon(): PNG {
  const size = 32;
  const png = new PNG({ width: size, height: size, colorType: 6 });
  const outer = shield(1);
  const inner = shield(0.78);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const alpha = coverage(size, x, y, (u, v) => (inside(outer, u, v) && !inside(inner, u, v)) || onTick(u, v, 0.05), 8);
      const i = (y * size + x) * 4;
      png.data[i] = 255;
      png.data[i + 1] = 255;
      png.data[i + 2] = 255;
      png.data[i + 3] = Math.round(alpha * 255);
    }
  }
  return png;
}

export function encodeColorIcon(): Buffer {
  return PNG.sync.write(drawColorIcon(), { colorType: 2, inputHasAlpha: true, deflateLevel: 9 });
}

export function encodeOutlineIcon(): Buffer {
  return PNG.sync.write(drawOutlineIcon(), { colorType: 6, deflateLevel: 9 });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  for (const [name, bytes] of [['color.png', encodeColorIcon()], ['outline.png', encodeOutlineIcon()]] as const) {
    writeFileSync(path.join(manifestDir, name), bytes);
    process.stderr.write(`wrote manifest/teams/${name} (${bytes.length} bytes)\n`);
  }
}
