-- Withdrawals of cross-instance merge requests (issue 14, docs/merge-requests.md): the
-- person who offered a merge request closes (or reopens) their pull request on the fork.
-- federated_merge_requests.closed_by_origin (upstream side) is 1 when Fedforge closed the
-- pull request on the word of the Repository actor that offered it: only such a close
-- may that actor undo. mr_offered.withdrawn (fork side) is 1 while the offered pull
-- request is closed in the local forge; an Accept that arrives then is followed at once
-- by the withdrawal.
ALTER TABLE federated_merge_requests ADD COLUMN closed_by_origin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mr_offered ADD COLUMN withdrawn INTEGER NOT NULL DEFAULT 0;
CREATE INDEX federated_merge_requests_branch ON federated_merge_requests (actor_id, branch);
