import { splitRepositoryName } from '../../cli/commands/deploy';

// How `ship deploy` compares the repository a Deployment pulls with the one --registry reads:
// image names split as container runtimes split them (no host means Docker Hub).

describe('splitRepositoryName', () => {
  test.each([
    ['127.0.0.1:30500/hasher', '127.0.0.1:30500', 'hasher'],
    ['127.0.0.1:30500/team/hasher', '127.0.0.1:30500', 'team/hasher'],
    ['localhost/hasher', 'localhost', 'hasher'],
    ['registry.example.com/dockercoins/hasher', 'registry.example.com', 'dockercoins/hasher'],
    ['docker.io/dockercoins/hasher', 'docker.io', 'dockercoins/hasher'],
    ['dockercoins/hasher', 'docker.io', 'dockercoins/hasher'],
    ['redis', 'docker.io', 'library/redis'],
  ])('Given %s, when split, then the host is %s and the path %s', (name, host, path) => {
    expect(splitRepositoryName(name)).toEqual({ host, path });
  });
});
