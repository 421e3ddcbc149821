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

"""GET /v1/scoring_engines shows the failpredict_risk engine and its model.

Watcher's harness syncs every ``watcher_scoring_engines`` entry point into its
database at set-up, as the decision engine does at start-up. The model is
configured after that sync here, so the test re-runs Watcher's Syncer (what a
decision-engine restart does after retraining) and checks that the API then
presents the configured bundle: feature columns, kind, training span, sha256.
"""

import json
import os

import fixtures
from watcher.decision_engine import sync

from tests.functional import base
from tests.unit.strategies import test_strategy as ts
from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import training


class TestScoringEngineAPI(base.FailpredictFunctionalTestCase):

    NEEDS_SCENARIO = False    # no InfluxDB: a small model trained here

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.bundle, _ = training.train(
            ts._training_history(), threshold=90.0, period=300,
            horizon=600, window=300, stride=4)
        self.path = os.path.join(tmp, 'model.joblib')
        self.digest = bundle_mod.save_bundle(self.bundle, self.path)

    def _engines(self):
        resp = self.admin_api.get('/scoring_engines')
        self.assertEqual(200, resp.status_code, resp.text)
        return {e['name']: e for e in resp.json()['scoring_engines']}

    def test_scoring_engine_listed_with_model_metainfo(self):
        # synced at start-up without a model: listed, saying why
        engine = self._engines()['failpredict_risk']
        shown = self.admin_api.get(
            '/scoring_engines/%s' % engine['uuid']).json()
        info = json.loads(shown['metainfo'])
        self.assertEqual('unavailable', info['status'])
        self.assertIn('model_path', info['error'])

        self.use_model(self.path, self.digest)
        sync.Syncer().sync()
        engines = self._engines()
        self.assertIn('dummy_scorer', engines)
        engine = engines['failpredict_risk']
        self.assertIn('failure state', engine['description'])
        shown = self.admin_api.get(
            '/scoring_engines/%s' % engine['uuid']).json()
        info = json.loads(shown['metainfo'])
        md = self.bundle.metadata
        self.assertEqual('loaded', info['status'])
        self.assertEqual(self.digest, info['sha256'])
        self.assertEqual(list(md['feature_names']), info['feature_columns'])
        self.assertEqual('svm', info['model_kind'])
        self.assertEqual(600, info['horizon'])
        self.assertEqual(json.loads(json.dumps(md['training_span'],
                                               default=str)),
                         info['training_span'])
        # the stale row was replaced, not duplicated
        resp = self.admin_api.get('/scoring_engines?limit=100')
        names = [e['name'] for e in resp.json()['scoring_engines']]
        self.assertEqual(1, names.count('failpredict_risk'))
