//! RLS proven on a real PostgreSQL with the Supabase roles and our migrations: connected as
//! `authenticator` (never as the owner or a superuser, which would skip RLS silently), switching
//! role per transaction exactly as PostgREST does.

use callway_testkit::pg::{TempPostgres, AUTHENTICATOR_PASSWORD};
use callway_testkit::tokio_postgres;

const INSERT: &str = "insert into public.leads (first_name, last_name, phone_raw, phone_e164, consent_at, consent_version, web_session_id) \
     values ('Marie', 'Curie', '06 12 34 56 78', $1, now(), 'v1', 'ws_test') returning id";

async fn as_role(pg: &TempPostgres, role: &str) -> tokio_postgres::Client {
    let c = pg
        .connect("authenticator", Some(AUTHENTICATOR_PASSWORD))
        .await
        .expect("connect as authenticator");
    c.batch_execute(&format!(
        "begin; set local role {role}; select set_config('request.jwt.claims', '{{\"role\":\"{role}\"}}', true);"
    ))
    .await
    .expect("switch role");
    c
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code().map(|c| c.code().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn anon_and_authenticated_can_neither_read_nor_insert() {
    let pg = TempPostgres::start().await.expect("postgres");
    for role in ["anon", "authenticated"] {
        let c = as_role(&pg, role).await;
        let read = c
            .query("select * from public.leads", &[])
            .await
            .expect_err("read must fail");
        assert_eq!(sqlstate(&read), "42501", "{role} read");
        c.batch_execute("rollback; begin").await.ok();
        let c = as_role(&pg, role).await;
        let write = c
            .query(INSERT, &[&"+33612345678"])
            .await
            .expect_err("insert must fail");
        assert_eq!(sqlstate(&write), "42501", "{role} insert");
    }
    // Even with Supabase's default grants put back, RLS alone still hides and refuses rows.
    let admin = pg.connect("postgres", None).await.unwrap();
    admin
        .batch_execute("grant all on public.leads to anon")
        .await
        .unwrap();
    let svc = as_role(&pg, "service_role").await;
    svc.query(INSERT, &[&"+33612345678"]).await.unwrap();
    svc.batch_execute("commit").await.unwrap();
    let anon = as_role(&pg, "anon").await;
    assert_eq!(
        anon.query("select * from public.leads", &[])
            .await
            .unwrap()
            .len(),
        0
    );
    let denied = anon
        .query(INSERT, &[&"+33612345678"])
        .await
        .expect_err("RLS must refuse");
    assert_eq!(sqlstate(&denied), "42501");
}

#[tokio::test]
async fn service_role_inserts_and_reads() {
    let pg = TempPostgres::start().await.expect("postgres");
    let c = as_role(&pg, "service_role").await;
    let _id: uuid_like::Id = c
        .query_one(INSERT, &[&"+33612345678"])
        .await
        .unwrap()
        .get(0);
    let rows = c
        .query("select phone_e164, callback_status from public.leads", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "+33612345678");
    assert_eq!(rows[0].get::<_, String>(1), "pending");
}

#[tokio::test]
async fn every_bad_number_and_oversized_text_is_refused_by_the_database() {
    let pg = TempPostgres::start().await.expect("postgres");
    for bad in [
        "0612345678",
        "+0612345678",
        "+3361234567890123",
        "+33 6 12",
        "+33abc",
    ] {
        let c = as_role(&pg, "service_role").await;
        let err = c.query(INSERT, &[&bad]).await.expect_err(bad);
        assert_eq!(sqlstate(&err), "23514", "{bad}");
    }
    let c = as_role(&pg, "service_role").await;
    let long = "x".repeat(4001);
    let err = c
        .query("insert into public.leads (first_name, last_name, phone_raw, phone_e164, consent_at, consent_version, web_session_id, summary) values ('A','B','1','+33612345678',now(),'v1','ws',$1)", &[&long])
        .await
        .expect_err("summary too long");
    assert_eq!(sqlstate(&err), "23514");
    let c = as_role(&pg, "service_role").await;
    let err = c
        .query("insert into public.leads (first_name, last_name, phone_raw, phone_e164, consent_version, web_session_id) values ('A','B','1','+33612345678','v1','ws')", &[])
        .await
        .expect_err("consent_at is required");
    assert_eq!(sqlstate(&err), "23502");
}

mod uuid_like {
    use callway_testkit::tokio_postgres;
    /// Reads a uuid column without pulling the uuid feature of tokio-postgres.
    pub struct Id(#[allow(dead_code)] pub String);
    impl<'a> tokio_postgres::types::FromSql<'a> for Id {
        fn from_sql(
            _: &tokio_postgres::types::Type,
            raw: &'a [u8],
        ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
            Ok(Id(raw.iter().map(|b| format!("{b:02x}")).collect()))
        }
        fn accepts(ty: &tokio_postgres::types::Type) -> bool {
            *ty == tokio_postgres::types::Type::UUID
        }
    }
}
