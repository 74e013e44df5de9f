/**
 * Turning text into search terms, the same way for policy sections and for questions: lowercase,
 * domain phrases folded into single tokens, stop words dropped, synonyms mapped to one canonical
 * word, then Porter stemming. Teachers type "kids", "mobiles", "insta", "pw"; policies say
 * "pupils", "personal mobile devices", "Instagram", "password". The tables below are the domain
 * knowledge; they are about how schools talk, never about one pack's wording.
 */
import { stemmer } from 'stemmer';

/** Multi-word phrases folded into one token before splitting (applied to both sides). */
const phrases: Array<[RegExp, string]> = [
  [/\bdesignated safeguarding leads?\b/g, ' dsl '],
  [/\bdeputy (?:dsl|designated safeguarding leads?)\b/g, ' dsl '],
  [/\bsafeguarding leads?\b/g, ' dsl '],
  [/\bsenior leadership team\b|\bsenior leaders?\b|\bsenior management team\b/g, ' slt '],
  [/\be-?safety co-?ordinator\b|\bonline safety (?:co-?ordinator|lead)\b/g, ' coordinator '],
  [/\bchair of (?:the )?governors\b/g, ' chairofgovernors '],
  [/\bsocial (?:media|networking)\b/g, ' socialmedia '],
  [/\bsixth[- ]?form(?:ers?)?\b|\byears? (?:12|13)\b|\by(?:r|ear)?1[23]s?\b/g, ' sixthform '],
  [/\bwi[- ]?fi\b/g, ' wifi '],
  [/\be-mail/g, 'email'],
  [/\bsemi[- ]nudes?\b/g, ' nude '],
  [/\bsexting\b|\bnudes?\b|\bnaked (?:photos?|pictures?|images?|pics?)\b|\bindecent (?:images?|photos?|pictures?)\b/g, ' nude '],
  [/\bmulti[- ]factor(?: authentication)?\b|\btwo[- ]factor(?: authentication)?\b|\b2fa\b|\bmfa\b/g, ' mfa '],
  [/\bgenerative ai\b|\bgen ?ai\b|\bartificial intelligence\b|\bchat ?gpt\b|\bchatbots?\b|\bai tools?\b|\blarge language models?\b|\bllms?\b/g, ' ai '],
  [/\bdeep ?fakes?\b/g, ' deepfake '],
  [/\bmemory sticks?\b|\bpen ?drives?\b|\bflash drives?\b|\busb (?:sticks?|drives?|keys?)\b|\bthumb ?drives?\b/g, ' usb '],
  [/\bdata breach(?:es)?\b/g, ' breach '],
  [/\bdata protection\b/g, ' dataprotection '],
  [/\bpersonal (?:mobile )?devices?\b/g, ' personaldevice phone '],
  [/\bmobile (?:phones?|devices?)\b|\bcell ?phones?\b|\bsmart ?phones?\b/g, ' phone '],
  [/\bsmart ?watch(?:es)?\b/g, ' smartwatch '],
  [/\bvideo calls?\b|\blive lessons?\b|\blive streams?\b|\bvideo lessons?\b/g, ' livelesson '],
  [/\bone[- ]to[- ]one\b|\b1[- :]to[- :]1\b|\b1:1\b|\b121\b/g, ' onetoone '],
  [/\bcyber[- ]?bullying\b|\bonline bullying\b/g, ' cyberbully '],
  [/\bin (my |the |your |a )?(class|classes|lessons?|classroom)\b|\bduring (class|lessons?)\b/g, ' lesson '],
  [/\bdon'?t\b/g, ' not '],
  [/\bcan'?t\b|\bcannot\b/g, ' not '],
];

/** Single words mapped to one canonical form (true synonyms, abbreviations and common misspellings). */
const synonyms: Record<string, string> = {
  kid: 'pupil', kids: 'pupil', child: 'pupil', children: 'pupil', student: 'pupil', students: 'pupil', learner: 'pupil', learners: 'pupil', pupils: 'pupil', youngster: 'pupil', tutee: 'pupil', tutees: 'pupil', studnet: 'pupil', studnets: 'pupil', pupi: 'pupil',
  mobile: 'phone', mobiles: 'phone', phones: 'phone', fone: 'phone', iphone: 'phone', handset: 'phone', mob: 'phone', mobil: 'phone', phne: 'phone',
  insta: 'instagram', ig: 'instagram', snap: 'snapchat', fb: 'facebook', tiktok: 'tiktok', twitter: 'x', whatsapp: 'whatsapp', whatsap: 'whatsapp', wa: 'whatsapp',
  pw: 'password', pwd: 'password', pword: 'password', passwd: 'password', passcode: 'password', passphrase: 'password', pasword: 'password', passwrd: 'password', login: 'password', logins: 'password',
  pic: 'photo', pics: 'photo', picture: 'photo', pictures: 'photo', image: 'photo', images: 'photo', photograph: 'photo', photographs: 'photo', photos: 'photo', selfie: 'photo', selfies: 'photo', foto: 'photo',
  vid: 'video', vids: 'video', videos: 'video', film: 'video', filming: 'video', filmed: 'video',
  msg: 'message', msgs: 'message', messaging: 'message', dm: 'message', dms: 'message', text: 'message', texts: 'message', texting: 'message', texted: 'message',
  teacher: 'staff', teachers: 'staff', colleague: 'staff', colleagues: 'staff', employee: 'staff', employees: 'staff', ta: 'staff', tas: 'staff', volunteer: 'staff', volunteers: 'staff',
  mum: 'parent', mom: 'parent', dad: 'parent', parents: 'parent', carer: 'parent', carers: 'parent', guardian: 'parent', guardians: 'parent',
  laptop: 'laptop', laptops: 'laptop', chromebook: 'laptop', chromebooks: 'laptop', ipad: 'tablet', ipads: 'tablet', tablets: 'tablet',
  hacked: 'compromise', hack: 'compromise', hacking: 'compromise', compromised: 'compromise',
  nicked: 'stolen', stole: 'stolen', theft: 'stolen', robbed: 'stolen',
  lost: 'lose', losing: 'lose', misplaced: 'lose',
  confiscate: 'confiscate', confiscated: 'confiscate', confiscation: 'confiscate', 'take away': 'confiscate',
  bullied: 'bully', bullying: 'bully', bullies: 'bully',
  gdpr: 'dataprotection', ico: 'ico',
  ceop: 'ceop', cops: 'police', polic: 'police',
  recieve: 'receive', recieved: 'receive', wierd: 'weird', untill: 'until', shud: 'should', wat: 'what', abt: 'about', pls: 'please', plz: 'please', u: 'you', ur: 'your', r: 'are', cos: 'because', bc: 'because',
  vpn: 'vpn', vpns: 'vpn', proxy: 'vpn', proxies: 'vpn',
  homework: 'homework', hw: 'homework', coursework: 'homework', assignment: 'homework', assignments: 'homework', essay: 'homework', essays: 'homework',
  cheat: 'plagiarism', cheating: 'plagiarism', plagiarise: 'plagiarism', plagiarised: 'plagiarism', plagiarize: 'plagiarism',
  webcam: 'camera', cam: 'camera', cams: 'camera', cameras: 'camera',
  zoom: 'livelesson',
  encrypt: 'encrypt', encrypted: 'encrypt', encryption: 'encrypt',
  sanction: 'sanction', sanctions: 'sanction', punishment: 'sanction', punish: 'sanction', punished: 'sanction', consequence: 'sanction', consequences: 'sanction', detention: 'sanction',
};

/**
 * Words too common in questions or in any policy to help choose a section. Kept small: a word
 * that distinguishes sections in some school's pack must stay.
 */
const stopWords = new Set(
  (
    'a an the and or but if then so of to in on at by for from with about as into onto over under up down out off ' +
    'is are was were be been being am do does did doing done have has had having get got gets getting ' +
    'i me my mine we us our you your yours he him his she her they them their it its this that these those there here ' +
    'what which who whom whose when where why how whats wheres whos hows ' +
    'can could should would will shall may might must ought need needs ' +
    'not no yes ok okay any some all each every anyone anybody someone somebody something anything ' +
    'just really very also too still even only quite bit lot lots please thanks thank hi hello hey ' +
    'allowed allow permitted policy policies rule rules say says said know tell let like want go going ' +
    'school academy im ive id dont cant wont isnt arent doesnt didnt thats theres etc eg ie re tbh lol btw ' +
    'one much many than again sure ask asking question'
  ).split(/\s+/),
);

/**
 * Matches where any of `patterns` matches (one pass instead of one per pattern). Most texts hold
 * none of the phrases, and a text none of them matches is left unchanged by all of them.
 */
function anyOf(patterns: Array<[RegExp, string]>): RegExp {
  return new RegExp(patterns.map(([pattern]) => `(?:${pattern.source})`).join('|'));
}
const anyPhrase = anyOf(phrases);

/** Lowercases and folds phrases; the shared first step of indexing and querying. */
export function normaliseText(input: string): string {
  let value = ` ${input.toLowerCase().replace(/[\u2018\u2019]/g, "'")} `;
  if (!anyPhrase.test(value)) return value;
  for (const [pattern, replacement] of phrases) value = value.replace(pattern, replacement);
  return value;
}

/** Splits normalised text into raw word tokens (letters and digits), dropping apostrophes. */
export function tokenize(input: string): string[] {
  return normaliseText(input)
    .replace(/'/g, '')
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

/** Tokens already turned into terms (a pure function of the token, so remembering it changes nothing). */
const termOfToken = new Map<string, string | null>();
const TERM_MEMO_LIMIT = 50_000;

/** One raw token to its search term, or null for a stop word. */
export function processTerm(token: string): string | null {
  let term = termOfToken.get(token);
  if (term === undefined) {
    term = termFor(token);
    if (termOfToken.size >= TERM_MEMO_LIMIT) termOfToken.clear();
    termOfToken.set(token, term);
  }
  return term;
}

function termFor(token: string): string | null {
  const lower = token.toLowerCase();
  if (lower.length < 2 && !/^[0-9]$/.test(lower)) return null;
  const mapped = synonyms[lower] ?? lower;
  if (stopWords.has(mapped)) return null;
  return stemmer(mapped);
}

/** The search terms of a text, in order, with duplicates kept. */
export function terms(input: string): string[] {
  const out: string[] = [];
  for (const token of tokenize(input)) {
    const term = processTerm(token);
    if (term) out.push(term);
  }
  return out;
}

/**
 * How staff say it versus how policies say it: school acronyms and everyday phrasing, each with the
 * policy vocabulary it stands for. Added to a question (never to the index) at a lower weight, so
 * the words the teacher actually typed still count most.
 */
const queryExpansions: Array<[RegExp, string]> = [
  [/\bdpo\b/, 'data protection officer'],
  [/\bsars?\b|\bsubject access\b/, 'subject access request'],
  [/\blado\b/, 'local authority designated officer allegation'],
  [/\bcp\b|\bchild protection\b/, 'child protection safeguarding records'],
  [/\behcps?\b|\bsend\b|\bsen\b|\biep\b/, 'special educational needs personal data sensitive'],
  [/\bslt\b|\bsenior leaders?\b|\bleadership\b/, 'senior leadership team'],
  [/\bin trouble\b|\bsacked\b|\bfired\b|\bdisciplin|\bget done\b|\bbreach(ed)? the\b/, 'disciplinary breach sanction misconduct'],
  [/\bsell|\bselling\b|\bmoney\b|\bpaid\b|\bside hustle\b|\bearn/, 'commercial income business'],
  [/\bsnow days?\b|\bclosures?\b|\bclosed\b|\blockdown\b|\bisolat/, 'closure remote learning'],
  [/\bregisters?\b|\btake the register\b|\babsent\b|\bturn up\b|\bdon'?t show\b/, 'attendance register engagement'],
  [/\bbedroom\b|\bkitchen\b|\bfrom home\b|\bat home\b/, 'background location home'],
  [/\bworksheets?\b|\blesson plans?\b|\bplanning\b|\bquiz(zes)?\b|\bslides?\b/, 'resources planning lesson'],
  [/\bofsted\b|\binspect/, 'inspection'],
  [/\bcafe\b|\bcoffee shop\b|\bcosta\b|\bstarbucks\b|\bpublic wi-?fi\b|\bhotspot\b|\btrain\b/, 'public wifi network'],
  [/\bhotmail\b|\bgmail\b|\byahoo\b|\bpersonal e-?mail\b|\bhome e-?mail\b/, 'personal email account'],
  [/\bgoogle drive\b|\bdropbox\b|\bicloud\b|\bonedrive\b|\bpersonal drive\b/, 'cloud storage file sharing personal account'],
  [/\bauthenticator\b|\bverification code\b/, 'multi-factor authentication'],
  [/\bfake (account|profile|page)\b|\bimpersonat|\bparody\b|\bour logo\b/, 'official account impersonation'],
  [/\bstress|\bsick\b|\boff ill\b|\bburn ?out\b|\bevenings?\b|\bweekends?\b|\bout of hours\b|\blate at night\b/, 'wellbeing working hours'],
  [/\banonymous(ly)?\b/, 'report anonymously tell trusted adult'],
  [/\bprivate\b|\bprivacy\b|\bpublic profile\b/, 'privacy settings personal account'],
  [/\bold (students|pupils|kids)\b|\bex[- ]?(students|pupils)\b|\bformer (students|pupils)\b|\balumni\b|\bleavers?\b/, 'former pupils left school'],
  [/\bsupply\b|\bvolunteers?\b|\bgovernors?\b|\bcontractors?\b|\bvisitors?\b|\btrainees?\b|\bstudent teachers?\b/, 'scope applies visitors volunteers'],
  [/\bfriends? (with|on)\b|\bfollow(ing|s)? (me|them|pupils|students)\b|\badd(ed)? (me|them)\b|\bfriend requests?\b/, 'friend request follow connection'],
  [/\bwho pays\b|\bliable\b|\bliability\b|\binsurance\b|\bdamaged?\b|\bbroken\b|\bcompensat/, 'liability damage loss insurance'],
  [/\bin charge\b|\bresponsible\b|\bwho (is|does|runs)\b/, 'responsibilities role lead'],
  [/\bsigns? off\b|\bapprove[ds]?\b|\bsign[- ]?off\b/, 'approve review governors'],
  [/\bandrew tate\b|\bincel|\bextrem|\bradical|\bprevent\b|\bterror|\bfar[- ]right\b|\bracist\b/, 'radicalisation extremist prevent'],
  [/\bdodgy\b|\binappropriate (site|website|content)\b|\bporn|\badult (site|content)\b|\bgambling\b|\bbetting\b/, 'inappropriate content filtering blocked'],
  [/\bexams?\b|\bassessments?\b|\btests?\b|\bmocks?\b/, 'examination assessment'],
  [/\btrips?\b|\bresidentials?\b|\bvisits?\b|\bday out\b/, 'trips residential visits'],
  [/\bwhats ?app\b|\bgroup chats?\b|\bsignal\b|\btelegram\b/, 'messaging apps group chat'],
  [/\bscreenshots?\b|\bevidence\b/, 'evidence record capture'],
  [/\bpassword manager\b|\bremember (my|all) passwords?\b/, 'password manager'],
  [/\bhow long\b|\bdeadline\b|\bwithin\b|\btime ?limit\b/, 'days hours within'],
  [/\bmarking\b|\bfeedback\b|\breports? (for|to) parents\b|\bwrite reports\b/, 'marking feedback reports'],
  [/\bcopy(ing)?\b|\bcheat|\bplagiar|\bwrote it with\b|\bown work\b/, 'academic honesty own work'],
  [/\bconsent\b|\bpermission\b|\bopt[- ]?out\b|\bopted out\b/, 'consent permission'],
  [/\bfilm(ing|ed)?\b|\bvideo(ing|ed)?\b|\brecord(ing|ed)?\b/, 'recording video filming'],
  [/\bwatch(es)?\b|\bapple watch\b|\bfitbit\b/, 'smart watches wearables'],
  [/\bheadphones?\b|\bearbuds?\b|\bairpods?\b/, 'headphones personal devices'],
  [/\bcharg(e|ing)\b|\bplug\b/, 'charging personal devices'],
  [/\blength\b|\bhow long\b[^?]*\b(password|pw|passcode)s?\b|\bcharacters?\b|\bstrong\b/, 'characters minimum length strong'],
  [/\bin (my |the |a )?(class|lessons?)\b|\bduring (class|lessons?)\b/, 'lessons school day'],
];

const anyExpansion = anyOf(queryExpansions);

/** Policy words a question implies but does not say, to be searched at a lower weight. */
export function expandQuery(question: string): string {
  const lower = ` ${question.toLowerCase().replace(/[\u2018\u2019]/g, "'")} `;
  if (!anyExpansion.test(lower)) return '';
  return queryExpansions.filter(([pattern]) => pattern.test(lower)).map(([, words]) => words).join(' ');
}
