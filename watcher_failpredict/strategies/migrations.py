# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Past live migrations, as the strategy's cooldown reads them.

The strategy takes its history as ``callable(since) -> iterable of
Migration``: by default :func:`from_watcher_actions` (Watcher's action
table); the testbed passes its own (``testbed.cluster.Testbed.
migration_history``), dated the same way.
"""

import collections
import datetime

#: One past migration: instance UUID, source and destination hostnames,
#: and when it happened (Unix seconds): its completion, or now while it
#: is under way.
Migration = collections.namedtuple(
    'Migration', 'instance_uuid source_node destination_node at')

#: Watcher's action type of a live migration.
MIGRATE = 'migrate'


def recent(history, now, cooldown, received_cooldown):
    """``(left, received)``: what the cooldowns hold at ``now``.

    ``left``: the instances migrated within ``cooldown`` seconds, with the
    hosts their last migration left and went to ({UUID: (age, source,
    destination)}): an instance does not go back to the host it left, nor
    moves while that migration is under way. ``received``: the hosts that
    received one within ``received_cooldown`` ({host: (age, UUID)}), not
    sources. The strategy and the testbed's oracle read them the same way.

    :param history: ``callable(since) -> iterable of Migration``
    """
    left, received = {}, {}
    longest = max(cooldown, received_cooldown)
    if not longest:
        return left, received
    for mig in history(now - longest):
        age = max(now - float(mig.at), 0.0)
        if mig.instance_uuid and age < cooldown and age < left.get(
                mig.instance_uuid, (float('inf'),))[0]:
            left[mig.instance_uuid] = (age, mig.source_node,
                                       mig.destination_node)
        if mig.destination_node and age < received_cooldown and \
                age < received.get(mig.destination_node, (float('inf'),))[0]:
            received[mig.destination_node] = (age, mig.instance_uuid)
    return left, received


def epoch(when):
    """Unix seconds of a datetime (a naive one is UTC, as Watcher stores
    them).
    """
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def from_watcher_actions(ctx, since, now):
    """Live migrations Watcher ran since ``since`` or is running, from its
    database.

    :param ctx: the request context (the strategy's ``ctx``)
    :param since: Unix seconds; finished migrations updated before it are
        left out
    :param now: ``callable() -> Unix seconds``, the date of a migration
        under way (it blocks its instance whatever its age)
    """
    from watcher import objects
    objects.register_all()  # as Watcher's services do at start-up
    action_obj = objects.action
    state = action_obj.State
    # Watcher stores naive UTC timestamps. 'action_type' is not a
    # filterable column: filter on state and time, then on the type.
    since_dt = datetime.datetime.fromtimestamp(
        since, datetime.timezone.utc).replace(tzinfo=None)
    done = action_obj.Action.list(ctx, filters={
        'state': state.SUCCEEDED, 'updated_at__gte': since_dt})
    running = action_obj.Action.list(ctx, filters={'state': state.ONGOING})
    for action, ongoing in ([(a, False) for a in done] +
                            [(a, True) for a in running]):
        if action.action_type != MIGRATE:
            continue
        params = action.input_parameters or {}
        when = action.updated_at or action.created_at
        at = now() if ongoing or when is None else epoch(when)
        yield Migration(params.get('resource_id'),
                        params.get('source_node'),
                        params.get('destination_node'), at)
