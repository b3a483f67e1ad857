from groupconv.paper_tables import load_e2gc_tables, load_epf


def test_tables_have_every_variant_once():
    table = load_e2gc_tables()
    assert len(table) == 22
    for network in ("mobilenet_v1", "resnext50"):
        sub = table[table.network == network]
        assert sorted(sub[sub.variant == "e2gc"].group) == [1, 2, 4, 8, 16, 32]
        assert sorted(sub[sub.variant == "fggc"].group) == [2, 4, 8, 16, 32]
    # spot checks against the printed tables
    row = table[(table.network == "mobilenet_v1") & (table.variant == "fggc") & (table.group == 8)]
    assert row.params_millions.item() == 7.30 and row.epf_P4000_B16_mJ.item() == 550
    row = table[(table.network == "resnext50") & (table.variant == "e2gc") & (table.group == 1)]
    assert row.macs_millions.item() == 4020 and row.epf_P100_B1_mJ.item() == 2185


def test_epf_long_form_in_joules():
    epf = load_epf()
    assert len(epf) == 22 * 2 * 3
    row = epf[(epf.network == "resnext50") & (epf.variant == "fggc") & (epf.group == 32)
              & (epf.platform == "P100") & (epf.batch == 16)]
    assert row.epf_J.item() == 0.687
