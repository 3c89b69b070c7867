"""The MIMIC-IV v2.2 raw tables the synthetic generator writes: file names, columns, types, dictionaries.

Column lists and types follow the MIMIC-IV v2.2 documentation (mimic.mit.edu/docs/iv, `hosp` and
`icu` modules) and MIT-LCP/mimic-code `mimic-iv/buildmimic/postgres/create.sql`, plus the v2.2
additions (`caregiver_id`, `admit_provider_id`, `order_provider_id`). Item ids are the real
MetaVision / hospital-lab ids that mimic-code's concepts select on.
"""

from __future__ import annotations

import pyarrow as pa

INT = pa.int64()
FLOAT = pa.float64()
STR = pa.string()
TIME = pa.timestamp("s")
DATE = pa.date32()

#: table -> (module folder, [(column, arrow type)]) in the official column order.
RAW_TABLES: dict[str, tuple[str, list[tuple[str, pa.DataType]]]] = {
    "patients": ("hosp", [
        ("subject_id", INT), ("gender", STR), ("anchor_age", INT), ("anchor_year", INT),
        ("anchor_year_group", STR), ("dod", DATE),
    ]),
    "admissions": ("hosp", [
        ("subject_id", INT), ("hadm_id", INT), ("admittime", TIME), ("dischtime", TIME),
        ("deathtime", TIME), ("admission_type", STR), ("admit_provider_id", STR),
        ("admission_location", STR), ("discharge_location", STR), ("insurance", STR),
        ("language", STR), ("marital_status", STR), ("race", STR), ("edregtime", TIME),
        ("edouttime", TIME), ("hospital_expire_flag", INT),
    ]),
    "d_labitems": ("hosp", [("itemid", INT), ("label", STR), ("fluid", STR), ("category", STR)]),
    "labevents": ("hosp", [
        ("labevent_id", INT), ("subject_id", INT), ("hadm_id", INT), ("specimen_id", INT),
        ("itemid", INT), ("order_provider_id", STR), ("charttime", TIME), ("storetime", TIME),
        ("value", STR), ("valuenum", FLOAT), ("valueuom", STR), ("ref_range_lower", FLOAT),
        ("ref_range_upper", FLOAT), ("flag", STR), ("priority", STR), ("comments", STR),
    ]),
    "microbiologyevents": ("hosp", [
        ("microevent_id", INT), ("subject_id", INT), ("hadm_id", INT), ("micro_specimen_id", INT),
        ("order_provider_id", STR), ("chartdate", TIME), ("charttime", TIME), ("spec_itemid", INT),
        ("spec_type_desc", STR), ("test_seq", INT), ("storedate", TIME), ("storetime", TIME),
        ("test_itemid", INT), ("test_name", STR), ("org_itemid", INT), ("org_name", STR),
        ("isolate_num", INT), ("quantity", STR), ("ab_itemid", INT), ("ab_name", STR),
        ("dilution_text", STR), ("dilution_comparison", STR), ("dilution_value", FLOAT),
        ("interpretation", STR), ("comments", STR),
    ]),
    "prescriptions": ("hosp", [
        ("subject_id", INT), ("hadm_id", INT), ("pharmacy_id", INT), ("poe_id", STR),
        ("poe_seq", INT), ("order_provider_id", STR), ("starttime", TIME), ("stoptime", TIME),
        ("drug_type", STR), ("drug", STR), ("formulary_drug_cd", STR), ("gsn", STR), ("ndc", STR),
        ("prod_strength", STR), ("form_rx", STR), ("dose_val_rx", STR), ("dose_unit_rx", STR),
        ("form_val_disp", STR), ("form_unit_disp", STR), ("doses_per_24_hrs", FLOAT), ("route", STR),
    ]),
    "icustays": ("icu", [
        ("subject_id", INT), ("hadm_id", INT), ("stay_id", INT), ("first_careunit", STR),
        ("last_careunit", STR), ("intime", TIME), ("outtime", TIME), ("los", FLOAT),
    ]),
    "d_items": ("icu", [
        ("itemid", INT), ("label", STR), ("abbreviation", STR), ("linksto", STR), ("category", STR),
        ("unitname", STR), ("param_type", STR), ("lownormalvalue", FLOAT), ("highnormalvalue", FLOAT),
    ]),
    "chartevents": ("icu", [
        ("subject_id", INT), ("hadm_id", INT), ("stay_id", INT), ("caregiver_id", INT),
        ("charttime", TIME), ("storetime", TIME), ("itemid", INT), ("value", STR),
        ("valuenum", FLOAT), ("valueuom", STR), ("warning", INT),
    ]),
    "inputevents": ("icu", [
        ("subject_id", INT), ("hadm_id", INT), ("stay_id", INT), ("caregiver_id", INT),
        ("starttime", TIME), ("endtime", TIME), ("storetime", TIME), ("itemid", INT),
        ("amount", FLOAT), ("amountuom", STR), ("rate", FLOAT), ("rateuom", STR), ("orderid", INT),
        ("linkorderid", INT), ("ordercategoryname", STR), ("secondaryordercategoryname", STR),
        ("ordercomponenttypedescription", STR), ("ordercategorydescription", STR),
        ("patientweight", FLOAT), ("totalamount", FLOAT), ("totalamountuom", STR),
        ("isopenbag", INT), ("continueinnextdept", INT), ("statusdescription", STR),
        ("originalamount", FLOAT), ("originalrate", FLOAT),
    ]),
    "outputevents": ("icu", [
        ("subject_id", INT), ("hadm_id", INT), ("stay_id", INT), ("caregiver_id", INT),
        ("charttime", TIME), ("storetime", TIME), ("itemid", INT), ("value", FLOAT),
        ("valueuom", STR),
    ]),
    "procedureevents": ("icu", [
        ("subject_id", INT), ("hadm_id", INT), ("stay_id", INT), ("caregiver_id", INT),
        ("starttime", TIME), ("endtime", TIME), ("storetime", TIME), ("itemid", INT),
        ("value", FLOAT), ("valueuom", STR), ("location", STR), ("locationcategory", STR),
        ("orderid", INT), ("linkorderid", INT), ("ordercategoryname", STR),
        ("ordercategorydescription", STR), ("patientweight", FLOAT), ("isopenbag", INT),
        ("continueinnextdept", INT), ("statusdescription", STR), ("originalamount", FLOAT),
        ("originalrate", FLOAT),
    ]),
}

FORMATS = ("csv.gz", "csv", "parquet")


def table_schema(table: str) -> pa.Schema:
    """The arrow schema of one raw table, in official column order."""
    return pa.schema(RAW_TABLES[table][1])


def table_columns(table: str) -> list[str]:
    """The official column names of one raw table, in order."""
    return [name for name, _ in RAW_TABLES[table][1]]


def table_relpath(table: str, file_format: str) -> str:
    """Where a table lives under the output folder, e.g. `icu/chartevents.csv.gz`."""
    return f"{RAW_TABLES[table][0]}/{table}.{file_format}"


# --- item ids (MetaVision, MIMIC-IV `icu.d_items`; hospital lab `hosp.d_labitems`) -------------

HR, RR, SPO2 = 220045, 220210, 220277
ABP_SYS, ABP_DIA, ABP_MEAN = 220050, 220051, 220052
NBP_SYS, NBP_DIA, NBP_MEAN = 220179, 220180, 220181
TEMP_F, TEMP_C = 223761, 223762
FIO2 = 223835
GCS_EYE, GCS_VERBAL, GCS_MOTOR = 220739, 223900, 223901
WEIGHT_DAILY_KG, WEIGHT_ADMIT_KG, WEIGHT_ADMIT_LB, HEIGHT_CM = 224639, 226512, 226531, 226730
O2_DEVICE, VENT_MODE, PEEP = 226732, 223849, 220339
NOREPI, EPI, DOPAMINE, PHENYLEPHRINE, VASOPRESSIN = 221906, 221289, 221662, 221749, 222315
NACL_09, D5W, LR, ALBUMIN_25, ALBUMIN_5 = 225158, 220949, 225828, 220862, 220864
URINE_FOLEY, URINE_VOID = 226559, 226560
INVASIVE_VENT, NONINVASIVE_VENT, ARTERIAL_LINE = 225792, 225794, 225752

#: (itemid, label, abbreviation, linksto, category, unitname, param_type, low, high)
D_ITEMS: list[tuple[int, str, str, str, str, str | None, str, float | None, float | None]] = [
    (HR, "Heart Rate", "HR", "chartevents", "Routine Vital Signs", "bpm", "Numeric", None, None),
    (ABP_SYS, "Arterial Blood Pressure systolic", "ABPs", "chartevents", "Routine Vital Signs",
     "mmHg", "Numeric", 90.0, 140.0),
    (ABP_DIA, "Arterial Blood Pressure diastolic", "ABPd", "chartevents", "Routine Vital Signs",
     "mmHg", "Numeric", 60.0, 90.0),
    (ABP_MEAN, "Arterial Blood Pressure mean", "ABPm", "chartevents", "Routine Vital Signs",
     "mmHg", "Numeric", None, None),
    (NBP_SYS, "Non Invasive Blood Pressure systolic", "NBPs", "chartevents",
     "Routine Vital Signs", "mmHg", "Numeric", 90.0, 140.0),
    (NBP_DIA, "Non Invasive Blood Pressure diastolic", "NBPd", "chartevents",
     "Routine Vital Signs", "mmHg", "Numeric", 60.0, 90.0),
    (NBP_MEAN, "Non Invasive Blood Pressure mean", "NBPm", "chartevents", "Routine Vital Signs",
     "mmHg", "Numeric", None, None),
    (RR, "Respiratory Rate", "RR", "chartevents", "Respiratory", "insp/min", "Numeric", None, None),
    (SPO2, "O2 saturation pulseoxymetry", "SpO2", "chartevents", "Respiratory", "%", "Numeric",
     None, None),
    (TEMP_F, "Temperature Fahrenheit", "Temperature F", "chartevents", "Routine Vital Signs",
     "°F", "Numeric", None, None),
    (TEMP_C, "Temperature Celsius", "Temperature C", "chartevents", "Routine Vital Signs",
     "°C", "Numeric", None, None),
    (FIO2, "Inspired O2 Fraction", "FiO2", "chartevents", "Respiratory", None, "Numeric",
     None, None),
    (GCS_EYE, "GCS - Eye Opening", "GCS - Eye Opening", "chartevents", "Neurological", None,
     "Text", None, None),
    (GCS_VERBAL, "GCS - Verbal Response", "GCS - Verbal Response", "chartevents", "Neurological",
     None, "Text", None, None),
    (GCS_MOTOR, "GCS - Motor Response", "GCS - Motor Response", "chartevents", "Neurological",
     None, "Text", None, None),
    (WEIGHT_DAILY_KG, "Daily Weight", "Daily Weight", "chartevents", "General", "kg", "Numeric",
     None, None),
    (WEIGHT_ADMIT_KG, "Admission Weight (Kg)", "Admission Weight (Kg)", "chartevents", "General",
     "kg", "Numeric", None, None),
    (WEIGHT_ADMIT_LB, "Admission Weight (lbs.)", "Admission Weight (lbs.)", "chartevents",
     "General", "lbs", "Numeric", None, None),
    (HEIGHT_CM, "Height (cm)", "Height (cm)", "chartevents", "General", "cm", "Numeric", None, None),
    (O2_DEVICE, "O2 Delivery Device(s)", "O2 Delivery Device(s)", "chartevents", "Respiratory",
     None, "Text", None, None),
    (VENT_MODE, "Ventilator Mode", "Ventilator Mode", "chartevents", "Respiratory", None, "Text",
     None, None),
    (PEEP, "PEEP set", "PEEP set", "chartevents", "Respiratory", "cmH2O", "Numeric", None, None),
    (NOREPI, "Norepinephrine", "Norepinephrine", "inputevents", "Medications", "mg", "Solution",
     None, None),
    (EPI, "Epinephrine", "Epinephrine", "inputevents", "Medications", "mg", "Solution", None, None),
    (DOPAMINE, "Dopamine", "Dopamine", "inputevents", "Medications", "mg", "Solution", None, None),
    (PHENYLEPHRINE, "Phenylephrine", "Phenylephrine", "inputevents", "Medications", "mg",
     "Solution", None, None),
    (VASOPRESSIN, "Vasopressin", "Vasopressin", "inputevents", "Medications", "units", "Solution",
     None, None),
    (NACL_09, "NaCl 0.9%", "NaCl 0.9%", "inputevents", "Fluids/Intake", "mL", "Solution",
     None, None),
    (D5W, "Dextrose 5%", "Dextrose 5%", "inputevents", "Fluids/Intake", "mL", "Solution",
     None, None),
    (LR, "LR", "LR", "inputevents", "Fluids/Intake", "mL", "Solution", None, None),
    (ALBUMIN_25, "Albumin 25%", "Albumin 25%", "inputevents", "Blood Products/Colloids", "mL",
     "Solution", None, None),
    (ALBUMIN_5, "Albumin 5%", "Albumin 5%", "inputevents", "Blood Products/Colloids", "mL",
     "Solution", None, None),
    (URINE_FOLEY, "Foley", "Foley", "outputevents", "Output", "mL", "Numeric", None, None),
    (URINE_VOID, "Void", "Void", "outputevents", "Output", "mL", "Numeric", None, None),
    (INVASIVE_VENT, "Invasive Ventilation", "Invasive Ventilation", "procedureevents",
     "2-Ventilation", None, "Processes", None, None),
    (NONINVASIVE_VENT, "Non-invasive Ventilation", "Non-invasive Ventilation", "procedureevents",
     "2-Ventilation", None, "Processes", None, None),
    (ARTERIAL_LINE, "Arterial Line", "Arterial Line", "procedureevents", "Access Lines - Invasive",
     None, "Processes", None, None),
]

#: lab name -> (itemid, label, fluid, category, unit, ref low, ref high, decimals)
LABS: dict[str, tuple[int, str, str, str, str, float, float, int]] = {
    "specimen": (52033, "Specimen Type", "Blood", "Blood Gas", "", float("nan"), float("nan"), 0),
    "lactate": (50813, "Lactate", "Blood", "Blood Gas", "mmol/L", 0.5, 2.0, 1),
    "ph": (50820, "pH", "Blood", "Blood Gas", "units", 7.35, 7.45, 2),
    "pao2": (50821, "pO2", "Blood", "Blood Gas", "mm Hg", 85.0, 105.0, 0),
    "paco2": (50818, "pCO2", "Blood", "Blood Gas", "mm Hg", 35.0, 45.0, 0),
    "base_excess": (50802, "Base Excess", "Blood", "Blood Gas", "mEq/L", -2.0, 3.0, 0),
    "creatinine": (50912, "Creatinine", "Blood", "Chemistry", "mg/dL", 0.5, 1.2, 1),
    "bun": (51006, "Urea Nitrogen", "Blood", "Chemistry", "mg/dL", 6.0, 20.0, 0),
    "sodium": (50983, "Sodium", "Blood", "Chemistry", "mEq/L", 133.0, 145.0, 0),
    "potassium": (50971, "Potassium", "Blood", "Chemistry", "mEq/L", 3.3, 5.1, 1),
    "chloride": (50902, "Chloride", "Blood", "Chemistry", "mEq/L", 96.0, 108.0, 0),
    "bicarbonate": (50882, "Bicarbonate", "Blood", "Chemistry", "mEq/L", 22.0, 32.0, 0),
    "glucose": (50931, "Glucose", "Blood", "Chemistry", "mg/dL", 70.0, 100.0, 0),
    "bilirubin": (50885, "Bilirubin, Total", "Blood", "Chemistry", "mg/dL", 0.0, 1.5, 1),
    "platelets": (51265, "Platelet Count", "Blood", "Hematology", "K/uL", 150.0, 440.0, 0),
    "wbc": (51301, "White Blood Cells", "Blood", "Hematology", "K/uL", 4.0, 11.0, 1),
    "hemoglobin": (51222, "Hemoglobin", "Blood", "Hematology", "g/dL", 12.0, 16.0, 1),
    "inr": (51237, "INR(PT)", "Blood", "Hematology", "", 0.9, 1.1, 1),
}

#: text value of the blood-gas specimen row (mimic-code bg.sql: item 52033, arterial = 'ART.')
SPECIMEN_ITEMID, SPECIMEN_VALUE = 52033, "ART."
#: labs drawn with a blood gas vs with the routine chemistry + haematology panel
BLOOD_GAS = ("specimen", "lactate", "ph", "pao2", "paco2", "base_excess")
ROUTINE = ("creatinine", "bun", "sodium", "potassium", "chloride", "bicarbonate", "glucose",
           "platelets", "wbc", "hemoglobin")
DAILY = ("bilirubin", "inr")

#: antibiotic drug names as MIMIC-IV `prescriptions.drug` spells them (mimic-code antibiotic.sql
#: matches these by name), and non-antibiotic orders that must not count as antibiotics.
ANTIBIOTICS = ("Vancomycin", "Piperacillin-Tazobactam", "CefePIME", "Meropenem", "CeftriaXONE",
               "Levofloxacin", "MetroNIDAZOLE (FLagyl)", "Azithromycin")
PROPHYLAXIS_ANTIBIOTIC = "CeFAZolin"
OTHER_DRUGS = ("Heparin", "Acetaminophen", "Pantoprazole", "Insulin", "Furosemide")

CAREUNITS = ("Medical Intensive Care Unit (MICU)", "Surgical Intensive Care Unit (SICU)",
             "Medical/Surgical Intensive Care Unit (MICU/SICU)", "Cardiac Vascular Intensive Care "
             "Unit (CVICU)", "Trauma SICU (TSICU)", "Coronary Care Unit (CCU)")
ANCHOR_YEAR_GROUPS = ("2008 - 2010", "2011 - 2013", "2014 - 2016", "2017 - 2019", "2020 - 2022")
GCS_EYE_TEXT = ("", "None", "To Pain", "To Speech", "Spontaneously")
GCS_VERBAL_TEXT = ("No Response-ETT", "No Response", "Incomprehensible sounds",
                   "Inappropriate Words", "Confused", "Oriented")
GCS_MOTOR_TEXT = ("", "No response", "Abnormal extension", "Abnormal Flexion", "Flex-withdraws",
                  "Localizes Pain", "Obeys Commands")
