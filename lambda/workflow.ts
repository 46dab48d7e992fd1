/**
 * The deploy workflow's state data: what each step's function takes and returns
 * (lib/constructs/deploy-workflow.ts routes it). Every function returns the whole next state, so
 * the graph's JSONPaths always find their fields.
 */
import type { Verdict, VerifyTarget } from '../core/verify';

/** One deployed Deployment to verify (core/verify.ts). */
export type WorkflowTarget = VerifyTarget;
/** A verdict (core/verify.ts); `state` drives the Judge choice. */
export type WorkflowVerdict = Verdict;

/** One Map iteration's state: what Check and Rollback take (as `item`) and return. */
export interface VerifyItem {
  readonly target: WorkflowTarget;
  /** The Wait state's SecondsPath. */
  readonly pollSeconds: number;
  /** Whether a failed verification may still be rolled back (false once tried, or off here). */
  readonly rollback: boolean;
  /** The last verdict; absent before the first check. */
  readonly verdict?: WorkflowVerdict;
  /** What Rollback did, when it ran: the image gone back to, or why nothing was done. */
  readonly rollbackNote?: string;
  /** The verdict of the verification before the rollback (what the report says failed). */
  readonly failure?: WorkflowVerdict;
}

/** The payload of the Check and Rollback Tasks. */
export interface VerifyStepInput {
  readonly action: 'check' | 'rollback';
  readonly item: VerifyItem;
}

/** The build, as the report tells it. */
export interface WorkflowBuild {
  readonly service: string;
  readonly buildNumber: number;
  readonly commit: string;
  readonly imageTag: string;
  /** Always set: the Deploy step's builds come from CodeBuild events (core/types.ts BuildIdentity). */
  readonly buildArn: string | undefined;
  readonly finishedAt: string;
}

/** What the Deploy step returns (the state the Map and Report read). */
export interface DeployStepOutput {
  /** `unconfirmed`: CodeBuild's record of the build contradicts the event (refused, alarmed). */
  readonly status: 'invalid' | 'unconfirmed' | 'done';
  /** One line: what the deploy did. */
  readonly summary: string;
  readonly build?: WorkflowBuild;
  /** The deployed Deployments to verify; empty when nothing was deployed. */
  readonly targets: readonly VerifyItem[];
  /** The deploy's own notification, which the Report step sends with the verdicts. */
  readonly notification: { readonly subject: string; readonly message: string };
}

/** The Report step's input: the Deploy output and the Map's verdicts. */
export interface ReportStepInput extends DeployStepOutput {
  /** Absent only when the Map never ran (it always runs; an empty one returns []). */
  readonly verdicts?: readonly VerifyItem[];
}

/** What Report returns (at `$.report`): `failed` ends the execution in the Fail state. */
export interface ReportStepOutput {
  readonly failed: boolean;
  readonly subject: string;
  /** Per Deployment: `<env>/<deployment>: <outcome>`. */
  readonly outcomes: readonly string[];
}
