"""The stages of a run, each called by the composition root (`harness.pipeline`), none calling back.

    load → plan → execute → record → analyse → publish

`plan` loads the suite and its cases and builds everything a run needs into one `Plan`
(the cases × repeats of its shard, the target, the judge, the options); `execute` plays
the plan's calls; `record` keeps the run and every result in the store as they come;
`analyse` classifies the run against its reference and accepts a baseline; `publish`
writes the reports and sends the notifications. `harness run`, `harness replay`, the
scheduler and the pytest plugin all build a plan and call these same stages.
"""
