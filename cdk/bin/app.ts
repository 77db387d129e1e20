#!/usr/bin/env node
import * as path from 'path';
import { App, Aspects, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import { AwsSolutionsChecks as AwsSolutionsChecksV3 } from 'cdk-nag-v3';
import { RehearsalStack } from '../lib/rehearsal';
import { CanaryExampleStack, LatticeExampleStack, ProtectExampleStack } from '../lib/stacks';

const app = new App();
const assetDir = path.resolve(__dirname, '..', '..', app.node.tryGetContext('shiftguard:assetDir') ?? '../target/lambda');
const arch = app.node.tryGetContext('shiftguard:architecture') ?? 'arm64';
if (arch !== 'arm64' && arch !== 'x86_64') {
  throw new Error(`context shiftguard:architecture: expected arm64 or x86_64, got ${JSON.stringify(arch)}`);
}
const architecture = arch === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64;

new CanaryExampleStack(app, 'ShiftGuardCanaryExample', { assetDir, architecture });
new LatticeExampleStack(app, 'ShiftGuardLatticeExample', { assetDir, architecture });
new ProtectExampleStack(app, 'ShiftGuardProtectExample', { assetDir, architecture });
// The world `make demo` runs in: the demo takes each ShiftGuard function's IAM policy from its template.
new RehearsalStack(app, 'ShiftGuardRehearsal', { assetDir, architecture });
// cdk-nag 2.x (an aspect) and 3.x (a validation plugin): a finding either reports fails the synth.
Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
Validations.of(app).addPlugins(new AwsSolutionsChecksV3(app, { verbose: true }));
