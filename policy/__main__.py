"""The inferfleet policy pack, as `pulumi preview --policy-pack policy` loads it.

Only constructs the pack: the policies live in the importable `inferfleet_policies` package, where
tests and `inferfleet render` call them directly. Running this module starts the analyzer server.
Levels default to prod's (the strictest); `--policy-pack-config policy/config/<env>.json` sets an
environment's levels and tells every policy which environment it checks.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from inferfleet_policies import ALL_POLICIES

PolicyPack("inferfleet", policies=list(ALL_POLICIES), enforcement_level=EnforcementLevel.MANDATORY)
