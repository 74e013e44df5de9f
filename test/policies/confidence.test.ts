/**
 * The confidence features that must mean the same on any pack, and the intent cue for an event
 * under way. Small hand-built packs, so each expectation follows from the definition alone.
 */
import { describe, expect, it } from 'vitest';
import { classifyIntent } from '../../src/policies/intent.ts';
import { PolicyIndex, confidenceFrom, confidenceModel, type IndexedSection } from '../../src/policies/search.ts';

const section = (id: string, heading: string, text: string): IndexedSection => ({ id: `pack#${id}`, docId: 'pack', docTitle: 'Staff handbook', heading, text, version: '1' });

describe('confidence features', () => {
  it('counts the question\'s neighbouring words as near when the section says them together', () => {
    const together = new PolicyIndex([section('a', 'Equipment', 'Staff must lock their personal laptop before leaving the room.')]);
    const apart = new PolicyIndex([section('a', 'Equipment', 'Personal matters are private. Each classroom has a cupboard, a desk, chairs and a whiteboard. Staff lock the laptop before leaving.')]);
    expect(together.explain('personal laptop')?.proximity).toBe(1);
    expect(apart.explain('personal laptop')?.proximity).toBe(0);
  });

  it('gives a one-word question no proximity evidence either way', () => {
    const index = new PolicyIndex([section('a', 'Equipment', 'Staff lock the laptop before leaving.')]);
    expect(index.explain('laptop')?.proximity).toBe(0);
  });

  it('measures the lead over the third section, and counts it whole when there is no third', () => {
    const two = new PolicyIndex([section('a', 'Laptops', 'Laptops are locked.'), section('b', 'Printers', 'Printers and laptops are shared.')]);
    expect(two.explain('laptops')?.margin3).toBe(1);
    const three = new PolicyIndex([section('a', 'Laptops', 'Laptops are locked.'), section('b', 'Printers', 'Printers and laptops.'), section('c', 'Cupboards', 'Cupboards hold laptops.')]);
    const margin3 = three.explain('laptops')!.margin3;
    expect(margin3).toBeGreaterThanOrEqual(three.explain('laptops')!.margin);
    expect(margin3).toBeLessThan(1);
  });

  it('is more confident when the matched words stand together, all else equal', () => {
    const features = { coverage: 1, headingCoverage: 0, margin: 0.3, margin3: 0.4, unknownShare: 0, matched: 0.5 };
    expect(confidenceFrom({ ...features, proximity: 1 }, confidenceModel)).toBeGreaterThan(confidenceFrom({ ...features, proximity: 0 }, confidenceModel));
  });
});

describe('intent: an event under way', () => {
  it('reads a person followed by a present-progressive verb as a report, even after a question', () => {
    expect(classifyIntent('is the filter down? kids in the ICT suite are getting onto gaming sites right now').intent).toBe('incident');
    expect(classifyIntent('two of my year 8s are sharing screenshots of a girl in their class').intent).toBe('incident');
  });

  it('does not read an -ing word inside a conditional as an event', () => {
    expect(classifyIntent('can i look through a pupil\'s tablet if i think there are bullying messages on it').intent).toBe('question');
    expect(classifyIntent('what do we do when pupils are using a vpn to get round the filter?').intent).toBe('question');
  });
});
