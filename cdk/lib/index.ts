/** ShiftGuard as a CDK construct library: `import { ShiftGuard } from 'shiftguard-cdk'`. */
export {
  ShiftGuard,
  stageOf,
} from './shiftguard';
export type {
  ShiftGuardProps,
  ProtectOptions,
  ProtectAlarms,
  ProtectedFunction,
  HookCheck,
  HookChecks,
  CheckedFunction,
  RollbackMapping,
  RollbackTarget,
  LambdaAliasTarget,
  CodeDeployGroupRef,
  LatticeListenerTarget,
  ApiGatewayCanaryTarget,
} from './shiftguard';
export {
  Rollout,
  rolloutPlan,
  RETRYABLE_ERRORS,
  REFUSED_ERRORS,
} from './rollout';
export type {
  RolloutProps,
  RolloutConstructProps,
  RolloutPlan,
  RolloutPlanTarget,
  RolloutStep,
  RolloutTarget,
  LatticeRolloutTarget,
  AliasRolloutTarget,
  RolloutChecks,
  RolloutCheckFunction,
} from './rollout';
