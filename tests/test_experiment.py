import threading

import pytest
import torch

from sdd_tui.core.data.datasets import load_dataset
from sdd_tui.core.engine import pruning
from sdd_tui.core.engine.experiment import Experiment
from sdd_tui.core.engine.models import build_model
from sdd_tui.core.engine.training import Branch, Control, Trainer
from sdd_tui.core.errors import SddError
from sdd_tui.core.events import EpochEnded, RoundEnded, RoundStarted, RunEnded, RunStarted
from sdd_tui.core.seeds import Purpose, stream_seed


def rounds_of(events):
    return [e.result for e in events if isinstance(e, RoundEnded)]


def test_smoke_run_emits_events_and_follows_the_schedule(run_experiment, home, smoke_config):
    run_id, status, events = run_experiment(smoke_config("prune.rounds=4"), home)
    assert status == "finished"
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunEnded)
    assert events[-1].status == "finished"
    results = rounds_of(events)
    assert [r["round"] for r in results] == [0, 1, 2, 3, 4]
    for r in results:
        assert r["sparsity"] == pytest.approx(1 - 0.8**r["round"], abs=2e-3)  # 1,024 weights: ceil rounding
        for key in ("test_acc", "best_test_acc", "train_acc", "noisy_memorized", "noisy_true_acc"):
            assert 0.0 <= r[key] <= 1.0
        assert r["best_test_acc"] >= r["test_acc"]
        assert r["learning_distance"] > 0
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    assert len(epochs) == 5 * 2
    assert all(e.run_id == run_id for e in events)


def test_same_seed_same_curve_other_seed_other_curve(run_experiment, home, smoke_config):
    _, _, first = run_experiment(smoke_config(), home)
    _, _, second = run_experiment(smoke_config(), home)
    _, _, third = run_experiment(smoke_config("runtime.seed=5"), home)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    assert strip(rounds_of(first)) == strip(rounds_of(second))
    assert strip(rounds_of(first)) != strip(rounds_of(third))


def test_rewind_restores_surviving_weights_to_iteration_t(run_experiment, home, smoke_config, monkeypatch):
    # smoke: 256 samples / batch 64 = 4 iterations per epoch; rewind to the end of epoch 1
    config = smoke_config("retrain.rewind_iteration=4", "prune.rounds=1", "train.epochs=3")
    starts = []
    original = Trainer.train

    def spy(self, start_iteration=0, **kwargs):
        params = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        starts.append((self.round_index, start_iteration, params, {n: m.clone() for n, m in self.masks.items()}))
        return original(self, start_iteration, **kwargs)

    monkeypatch.setattr(Trainer, "train", spy)
    run_experiment(config, home)
    (_, start0, _, _), (round1, start1, rewound, masks) = starts
    assert (start0, round1, start1) == (0, 1, 4)

    # the dense run's weights after exactly 4 iterations, trained independently
    monkeypatch.setattr(Trainer, "train", original)
    data = load_dataset(config.data, config.noise, home, config.runtime.seed)
    model = build_model(config.model, data.input_shape, data.num_classes,
                        stream_seed(config.runtime.seed, Purpose.INIT))
    one_epoch = config.train.model_copy(update={"epochs": 1})
    full = pruning.full_masks(model, list(masks))
    Trainer(model, data, one_epoch, full, Control(), round_index=0, seed=config.runtime.seed).train()
    expected = dict(model.named_parameters())
    for name, mask in masks.items():
        assert torch.equal(rewound[name] * mask, expected[name].detach() * mask)
        assert not mask.all()


def test_reinit_keeps_the_mask_but_not_the_weights(run_experiment, home, smoke_config, monkeypatch):
    config = smoke_config("retrain.mode=reinit", "prune.rounds=2")
    seen = []
    original = Trainer.train

    def spy(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        seen.append((self.round_index, self.branch, {n: p.detach().clone() for n, p in self.model.named_parameters()},
                     {n: m.clone() for n, m in self.masks.items()}))
        return result

    monkeypatch.setattr(Trainer, "train", spy)
    _, status, events = run_experiment(config, home)
    assert status == "finished"
    for round_index in (1, 2):
        (ticket,) = [s for s in seen if s[0] == round_index and s[1] is Branch.MAIN]
        (reinit,) = [s for s in seen if s[0] == round_index and s[1] is Branch.REINIT]
        for name, mask in ticket[3].items():
            assert torch.equal(mask, reinit[3][name])
            assert (reinit[2][name][~mask] == 0).all()
            assert not torch.equal(ticket[2][name], reinit[2][name])
    results = rounds_of(events)
    assert "ticket" in results[1] and results[1]["sparsity"] == pytest.approx(0.2, abs=2e-3)


@pytest.mark.parametrize("mode", ["finetune", "lr_rewind", "scratch"])
def test_other_retrain_modes_run(run_experiment, home, smoke_config, mode):
    _, status, events = run_experiment(smoke_config(f"retrain.mode={mode}", "retrain.rewind_iteration=2"), home)
    assert status == "finished"
    assert len(rounds_of(events)) == 4


def test_stop_flag_stops_at_next_batch_and_keeps_rounds(home, smoke_config):
    control = Control()
    events = []

    def sink(event):
        events.append(event)
        if isinstance(event, RoundStarted) and event.round == 2:
            control.stop.set()

    experiment = Experiment(smoke_config(), sink, home, control=control)
    assert experiment.run() == "stopped"
    assert [r["round"] for r in rounds_of(events)] == [0, 1]
    assert events[-1].status == "stopped"


def test_pause_blocks_between_batches(home, smoke_config):
    control = Control()
    control.paused.set()
    events = []
    experiment = Experiment(smoke_config(), events.append, home, control=control)
    worker = threading.Thread(target=experiment.run)
    worker.start()
    worker.join(0.5)
    assert worker.is_alive() and not any(isinstance(e, EpochEnded) for e in events)
    control.paused.clear()
    worker.join(30)
    assert not worker.is_alive() and events[-1].status == "finished"


def test_branches_keep_the_data_order_streams_stored_runs_were_trained_with():
    assert [(b.value, b.stream) for b in Branch] == [("main", 0), ("reinit", 1), ("redense", 2)]


def test_the_retrain_modes_a_config_takes_are_the_rows_saying_where_a_round_starts():
    from sdd_tui.core.config import validate_config
    from sdd_tui.core.retrain import RETRAIN_MODES

    assert [validate_config({"retrain": {"mode": mode}}).retrain.mode for mode in RETRAIN_MODES] == list(RETRAIN_MODES)
    with pytest.raises(SddError, match="retrain.mode: .*unknown name 'rewnd'; use one of rewind, reinit"):
        validate_config({"retrain": {"mode": "rewnd"}})


def test_an_epoch_ended_event_carries_every_epoch_stat_counting_epochs_from_1():
    from sdd_tui.core.engine.training import EpochStats

    stats = EpochStats(epoch=2, train_loss=0.5, train_acc=0.8, test_loss=0.7, test_acc=0.6, lr=0.1, seconds=1.5,
                       samples_per_s=100.0)
    event = EpochEnded.from_stats(stats, run_id="r", time=1.0, round=1, rounds=3, epochs=4, branch=Branch.REINIT)
    assert event.epoch == 3 and event.branch == "reinit" and type(event.branch) is str
    assert {k: getattr(event, k) for k in vars(stats) if k != "epoch"} == {
        k: v for k, v in vars(stats).items() if k != "epoch"}
