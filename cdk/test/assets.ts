// The stand-in zips the tests (and the Python twins) synthesize against; `make build` makes the real
// ones. The templates do not depend on the code: each binary's bootstrap.zip is an empty zip.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** An empty zip, as hex (cdk/python-test/app.py writes the same bytes). */
export const EMPTY_ZIP = '504b0506' + '00'.repeat(18);
/** The binaries a ShiftGuard reads from its assetDir. */
export const BINARIES: readonly string[] = ['pre-traffic', 'post-traffic', 'rollback', 'shift'];

export interface StandInOptions {
  /** Where to write them (made if missing); by default a new temporary directory. */
  readonly dir?: string;
  /** Which binaries; by default all of BINARIES. */
  readonly binaries?: readonly string[];
  /** A binary's own bootstrap.zip, as hex, instead of EMPTY_ZIP. */
  readonly zips?: Readonly<Record<string, string>>;
}

/** `<dir>/<binary>/bootstrap.zip` for each binary; returns `dir`. */
export function standInAssets(options: StandInOptions = {}): string {
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'shiftguard-assets-'));
  for (const bin of options.binaries ?? BINARIES) {
    fs.mkdirSync(path.join(dir, bin), { recursive: true });
    fs.writeFileSync(path.join(dir, bin, 'bootstrap.zip'), Buffer.from(options.zips?.[bin] ?? EMPTY_ZIP, 'hex'));
  }
  return dir;
}

/**
 * Temporary directories removed after the test file's tests: call at the top level of a test file
 * (it registers jest's afterAll); the function it returns makes one, named `<prefix>XXXXXX`.
 */
export function temporaryDirectories(): (prefix: string) => string {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) fs.rmSync(d, { recursive: true, force: true });
  });
  return (prefix) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    made.push(dir);
    return dir;
  };
}
