"""Import and export of the unit registry as CSV or YAML, all or nothing, and Vietnam's real
administrative units (``vietnam_provinces``) through the same import.

The file format, one unit per CSV row or YAML item, with these fields::

    code,name,kind,parent_code,reports_to_code,focal_email,head_email,webhook_url,tags,established_on

- CSV: UTF-8 (a BOM is accepted), a header row naming the columns (``code``, ``name`` and
  ``kind`` are required, the others optional, in any order); an empty cell is "none";
  ``tags`` are separated by ``;``; ``established_on`` is YYYY-MM-DD. Line numbers in errors
  count the header as line 1.
- YAML: a list of mappings with the same flat keys; ``tags`` a list (or a ``;`` string). The
  contacts may instead be nested under ``contacts:`` as in the HTTP API. Codes must be
  strings: quote ``"01"`` or ``"00070"`` (YAML reads 00070 as the octal number 56). Errors
  give the line where the item starts.

Every row is validated before anything is written; any error refuses the whole file with
every error listed (:class:`ImportRefused`). Otherwise new units are registered parents
first whatever the file order, changed units are updated (name, contacts, reports_to, tags),
identical ones are left alone: importing the same file twice creates nothing the second time.
The kind, the parent and the date of establishment of a registered unit do not change by
import (its path, and with it every subject it publishes on, hangs on its parent).
"""

from __future__ import annotations

from services.plans.handlers.unit_import.admin import (
    DEPARTMENTS_FILE,
    DepartmentSpec,
    ProvinceNames,
    admin_file,
    admin_values,
    demo_contacts,
    department_values,
    find_province,
    home_affairs_abbr,
    import_admin,
    list_provinces,
    load_departments,
    parse_departments,
    province_names,
)
from services.plans.handlers.unit_import.checks import ImportCounts, ImportPlan, plan_import
from services.plans.handlers.unit_import.files import (
    decode,
    export_rows,
    parse_file,
    read_csv,
    read_yaml,
    render,
    to_csv,
    to_yaml,
)
from services.plans.handlers.unit_import.importing import export_units, import_units
from services.plans.handlers.unit_import.rows import (
    COLUMNS,
    REFERENCE_FIELDS,
    REQUIRED_COLUMNS,
    Email,
    FileFormat,
    ImportRefused,
    ImportRow,
    ParsedFile,
    RawFile,
    RawRow,
    RowError,
    Tag,
    UnitRow,
    Webhook,
    validate_rows,
)

__all__ = [
    "COLUMNS",
    "DEPARTMENTS_FILE",
    "REFERENCE_FIELDS",
    "REQUIRED_COLUMNS",
    "DepartmentSpec",
    "Email",
    "FileFormat",
    "ImportCounts",
    "ImportPlan",
    "ImportRefused",
    "ImportRow",
    "ParsedFile",
    "ProvinceNames",
    "RawFile",
    "RawRow",
    "RowError",
    "Tag",
    "UnitRow",
    "Webhook",
    "admin_file",
    "admin_values",
    "decode",
    "demo_contacts",
    "department_values",
    "export_rows",
    "export_units",
    "find_province",
    "home_affairs_abbr",
    "import_admin",
    "import_units",
    "list_provinces",
    "load_departments",
    "parse_departments",
    "parse_file",
    "plan_import",
    "province_names",
    "read_csv",
    "read_yaml",
    "render",
    "to_csv",
    "to_yaml",
    "validate_rows",
]
