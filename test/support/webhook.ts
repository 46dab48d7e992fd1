import { Template } from 'aws-cdk-lib/assertions';

/** A webhook filter as CloudFormation holds it (`Triggers.FilterGroups[][]`). */
export interface WebhookFilter {
  Type: 'EVENT' | 'HEAD_REF' | 'BASE_REF' | 'FILE_PATH' | 'ACTOR_ACCOUNT_ID' | 'COMMIT_MESSAGE';
  Pattern: string;
  ExcludeMatchedPattern?: boolean;
}

/** What a git host sends: the event, the refs and the files the push or pull request changes. */
export interface WebhookEvent {
  event: string;
  headRef: string;
  baseRef?: string;
  files: readonly string[];
}

/**
 * Does a filter group start a build for this event? CodeBuild's documented rule: every filter in
 * the group must pass; EVENT is a comma-separated list of events; FILE_PATH passes when a changed
 * file matches; ExcludeMatchedPattern inverts a filter.
 */
export function groupMatches(group: readonly WebhookFilter[], event: WebhookEvent): boolean {
  return group.every((filter) => {
    const regex = new RegExp(filter.Pattern);
    const passes = (() => {
      switch (filter.Type) {
        case 'EVENT':
          return filter.Pattern.split(',')
            .map((e) => e.trim())
            .includes(event.event);
        case 'HEAD_REF':
          return regex.test(event.headRef);
        case 'BASE_REF':
          return event.baseRef !== undefined && regex.test(event.baseRef);
        case 'FILE_PATH':
          return event.files.some((file) => regex.test(file));
        default:
          throw new Error(`groupMatches: filter type ${filter.Type} is not modelled`);
      }
    })();
    return filter.ExcludeMatchedPattern === true ? !passes : passes;
  });
}

/** The names of the CodeBuild projects in a template that this webhook event would start. */
export function projectsTriggered(template: Template, event: WebhookEvent): string[] {
  const projects = template.findResources('AWS::CodeBuild::Project') as Record<
    string,
    {
      Properties: {
        Name: string;
        Triggers?: { Webhook: boolean; FilterGroups: WebhookFilter[][] };
      };
    }
  >;
  return Object.values(projects)
    .filter(({ Properties: { Triggers } }) =>
      Triggers?.Webhook === true
        ? Triggers.FilterGroups.some((group) => groupMatches(group, event))
        : false,
    )
    .map(({ Properties }) => Properties.Name)
    .sort();
}
