/**
 * The card pictures in the README and the guides: one per catalogue entry that asks for one, a
 * small PNG, shown somewhere. `npm run pictures` redraws them (it needs Chromium, so it is not run
 * here).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { MAX_PICTURE_BYTES } from '../../scripts/render-card-pictures.ts';
import { catalogue } from './catalogue.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pictures = catalogue.filter((entry) => entry.picture).map((entry) => entry.picture!);
const shownIn = ['README.md', 'docs/staff.md', 'docs/coordinators.md'].map((file) => readFileSync(`${root}${file}`, 'utf8')).join('\n');

describe('the card pictures', () => {
  it('are named once each in the catalogue', () => {
    expect(pictures.length).toBeGreaterThanOrEqual(4);
    expect(new Set(pictures).size).toBe(pictures.length);
  });

  it.each(pictures)('%s exists, is a PNG under the size limit, and is shown in the README or a guide', (file) => {
    const path = `${root}docs/images/${file}`;
    expect(existsSync(path), `${path} is missing: run npm run pictures`).toBe(true);
    expect(statSync(path).size).toBeLessThan(MAX_PICTURE_BYTES);
    const png = PNG.sync.read(readFileSync(path));
    expect(png.width).toBeGreaterThan(300);
    expect(shownIn).toContain(`images/${file}`);
  });
});
