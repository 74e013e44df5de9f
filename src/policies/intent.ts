/**
 * Telling a report or disclosure ("a pupil just told me someone online keeps asking her for
 * photos") from a question about policy ("what do I do if a pupil sends a nude?").
 *
 * A weighted set of cues, not a model: what marks a report is an event anchored in the speaker's
 * world (someone told me, I found, my laptop was stolen, this morning, one of my pupils); what
 * marks a question is a hypothetical or a request for a rule (what do I do if, are we allowed,
 * who do I tell). Missing a report costs far more than answering a question with the incident
 * steps, so ties go to "incident".
 */

export type Intent = 'question' | 'incident';

interface Cue {
  pattern: RegExp;
  weight: number;
}

const incidentCues: Cue[] = [
  // Someone disclosed or showed something to the speaker.
  { pattern: /\b(told|tells|telling|disclosed|disclosing|confided (in|to)|came to|showed|shown|showing|messaged|emailed|reported (it )?to|admitted to|approached) me\b/, weight: 3 },
  { pattern: /\b(has|have) (just )?(disclosed|told|shown|reported|admitted)\b/, weight: 2.5 },
  // The speaker found, saw or did something.
  { pattern: /\bi('ve| have|'m| am)? ?(just |literally |accidentally )?(found|caught|saw|seen|noticed|spotted|overheard|overhear|received|recieved|got sent|clicked|opened|downloaded|entered|typed|lost|left|dropped|misplaced|sent|shared|forwarded|heard|witnessed|walked in on|discovered|intercepted|confiscated|think i|think someone|suspect|believe|came across)\b/, weight: 3 },
  { pattern: /\bi('m| am) (worried|concerned) (about|that)\b/, weight: 2.5 },
  { pattern: /\bi('ve| have) (got|been) (a|an|some)\b/, weight: 1.5 },
  // Something has happened or is happening.
  { pattern: /\b(is|are|was|were|has been|have been|keeps?|kept|been|getting|got|get) (being )?(bullied|bullying|sending|messaging|asking|posting|posted|sharing|shared|threatening|threatened|harassing|harassed|contacting|contacted|groomed|circulating|circulated|going round|spread|spreading|watching|searching|accessing|using|filming|filmed|recording|recorded|hacked|stolen|nicked|lost|leaked|targeted|blackmailed|sextorted|excluded|tagged|screenshotted|photographed)\b/, weight: 2.5 },
  { pattern: /\b(stolen|nicked|hacked|compromised|missing|leaked|gone missing|been taken|got taken)\b/, weight: 1.5 },
  { pattern: /\b(my|our) (school )?(laptop|phone|mobile|account|email|usb|memory stick|ipad|tablet|device|password|bag|car|login|chromebook)\b/, weight: 1.5 },
  { pattern: /\b(lost|left|dropped) (my|our|a school|the school)\b/, weight: 2.5 },
  { pattern: /\b(just|today|this morning|this afternoon|this lunchtime|yesterday|last night|last week|earlier|right now|currently|at the moment|in my (lesson|class|form)|during (period|lesson|registration|break|lunch|class)|on the bus|this week|tonight|over the weekend)\b/, weight: 1.5 },
  { pattern: /\b(one of my|my|this|that|a|one of our|two of my|some of my|a few of my|several) (pupil|student|kid|child|boy|girl|learner|tutee|year \d+|yr ?\d+|y\d+|class|form|group|tutor group|colleague|teacher|member of staff|parent|mum|dad|sixth former|lad|lass)s?\b[^?]*\b(has|have|is|are|was|were|keeps|told|said|showed|sent|posted|shared|got|gets|been|came|seems|admitted|disclosed)\b/, weight: 2 },
  { pattern: /\b(someone|somebody|a man|an adult|a stranger|an older|a person)\b[^?]*\b(has been|keeps|kept|is|was|sent|asked|asking|messaging|contacting|posted)\b/, weight: 1.5 },
  // Something is going on as the speaker writes: a person, then a present-progressive verb ("kids in IT3 are getting onto games sites").
  { pattern: /\b(pupils?|students?|kids?|children|boys?|girls?|lads?|learners?|class|form|someone|somebody|he|she|they|y\d+s?|yr ?\d+s?|year ?\d+s?)\b(?:(?!\b(?:if|when|whether|there|what|who|how)\b)[a-z0-9' ]){0,25}\b(is|are|'re|'s) (still |now |currently |all )?[a-z]{3,}ing\b/, weight: 1.5 },
  { pattern: /\b(alert|flagged|flag|popped up|came up|triggered|blocked site)\b/, weight: 1 },
  { pattern: /\bthere('s|s| is| are|'re| was| were| has been) (a|an|some|this|these|loads of|nude|naked|rumou?rs?|videos?|photos?|pictures?|pics?|screenshots?|messages?|posts?|fight|group chat)\b/, weight: 1.5 },
  { pattern: /\bi('ve| have)? (just |accidentally |mistakenly |think i )?[a-z]{3,}ed\b/, weight: 2 },
  { pattern: /\b(want|need|have|like|would like|wish|going) to (report|log|raise|flag|record) (a|an|this|something|that|my|the)\b|\breport(ing)? (an|a) (incident|concern|disclosure)\b|^report\b|\breport an incident\b/, weight: 4 },
  { pattern: /\bwhat (do|should) i do (now|next)\b|\bwhat now\b|\bhelp( me)?!|\burgent\b|\basap\b/, weight: 1.5 },
  // Chat drops the subject: "found a usb stick...", "sent the email to...", "think ive been phished".
  { pattern: /^(just |accidentally |literally )?(found|caught|sent|lost|left|clicked|saw|seen|noticed|spotted|overheard|received|got|had|think|pretty sure|been|dropped|opened|forwarded|shared|walked in)\b/, weight: 3 },
  // Someone said or did something: reported speech and past-tense events with a person as subject.
  { pattern: /\b(says|said|saying|claims|claimed|reckons|mentioned|admits|admitted|reports|reported|disclosed|alleges|alleged)\b/, weight: 1.5 },
  { pattern: /\b(pupils?|students?|kids?|child|children|boys?|girls?|lads?|learners?|parents?|mum|dad|teachers?|tas?|colleagues?|supply|cover|head|filter|someone|somebody|he|she|they|y\d+s?|yr ?\d+s?|year ?\d+s?)\b[^?.!]{0,40}\b(has|have|had|is|are|was|were)? ?(been )?([a-z]+ed|sent|let|made|took|taken|got|gone|found|caught|shown|showed|told|gave|given|put|wrote|written|broke|broken|hit|stole|saw|seen|left|lost|slagging|posting|sharing|texting|messaging|following|talking|using|going|filming|recording|watching|crying|in tears)\b/, weight: 1.5 },
  { pattern: /\b(in tears|crying|upset|distressed|scared|frightened|self[- ]harm|suicid|hurt|hurts|hit|abuse|abused|blackmail|blackmailed|sextort|threaten|threatened|groom|groomed)\b/, weight: 1 },
];

const questionCues: Cue[] = [
  // A hypothetical opener outweighs everything that follows it.
  { pattern: /^(if|hypothetically|what if|suppose|supposing|say|in case|theoretically|in theory|would|should|what would|what (should|would|do|does|must) happen|what (do|should|would|must) (i|we|staff|teachers) (do|say|log|write|tell|record))\b/, weight: 4 },
  { pattern: /\bwould (i|we|you|staff)\b|\bwhat should i (say|write|log|record|do)\b|\bam i (ever )?(allowed|supposed|meant|ok|okay)\b|\bare we (ever )?(allowed|supposed|meant)\b/, weight: 2 },
  { pattern: /^(can|could|may|are|is|do|does|should|am|what|whats|what's|who|whom|when|where|how|which|why|any|will|would|must|has|have|was|were|if|in case|suppose|is it)\b/, weight: 2.5 },
  { pattern: /\bwhat (do|should|would|must) (i|we|staff|teachers|you|a teacher) do (if|when|about)\b|\bwhat (happens|should happen|is the procedure|is the process) (if|when)\b/, weight: 3.5 },
  { pattern: /\b(if|when|whenever|in case|suppose|supposing|hypothetically|say) (a|an|one of|my|someone|somebody|pupils?|students?|kids?|children|a child|staff|i|we|you|they|he|she|there)\b/, weight: 2 },
  { pattern: /\bwho (do|should|would|can) (i|we|you|staff) (tell|report|contact|go to|speak to|talk to|inform|escalate)\b|\bhow (do|should|would|can) (i|we|you|staff) (report|log|raise|flag|record|escalate)\b|\bwhere (do|should|can) (i|we) (report|log|record)\b/, weight: 3 },
  { pattern: /\b(allowed|permitted|policy|policies|rule|rules|ok to|okay to|supposed to|meant to|expected to|required to|have to|need to|procedure|process|guidance|guidelines|aup|agreement)\b/, weight: 1.5 },
  { pattern: /\b(are|is) (we|staff|pupils|students|kids|teachers|i|it) (allowed|ok|okay|permitted|able)\b|\bam i (allowed|ok|able|supposed)\b|\bcan (i|we|pupils|students|kids|staff|teachers|parents)\b/, weight: 1.5 },
  { pattern: /\?\s*$/, weight: 0.5 },
];

/** The weights of the cues the message shows, added up, and whether it shows any. */
function score(message: string, cues: Cue[]): { total: number; any: boolean } {
  let total = 0;
  let any = false;
  for (const cue of cues) {
    if (cue.pattern.test(message)) {
      total += cue.weight;
      any = true;
    }
  }
  return { total, any };
}

export interface IntentResult {
  intent: Intent;
  /** Positive leans to incident, negative to question. */
  margin: number;
}

/** Margin above which a message is a report. Below zero: ties and near-ties go to "incident". */
const INCIDENT_BIAS = -0.5;

export function classifyIntent(message: string): IntentResult {
  const normalised = ` ${message.toLowerCase().replace(/[\u2018\u2019]/g, "'").replace(/\s+/g, ' ').trim()}`.trim();
  if (normalised.length === 0) return { intent: 'question', margin: -Infinity };
  const incident = score(normalised, incidentCues);
  const margin = incident.total - score(normalised, questionCues).total;
  return { intent: incident.any && margin > INCIDENT_BIAS ? 'incident' : 'question', margin };
}
