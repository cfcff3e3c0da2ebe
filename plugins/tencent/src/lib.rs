//! `tencent`: Tencent Cloud Container Registry — Personal Edition
//! (`ccr.ccs.tencentyun.com`, user = account UIN) and Enterprise Edition
//! (`INSTANCE.tencentcloudcr.com`) with the fixed (console) password or a
//! long-term instance token.

crowsnest_plugin_sdk::domain_registry!(
    Tencent,
    "tencent",
    "Tencent Cloud Container Registry (ccr.ccs.tencentyun.com, *.tencentcloudcr.com)",
    ["ccr.ccs.tencentyun.com", "*.tencentcloudcr.com"],
    "Account UIN (personal) or the instance token's user name",
    "Fixed registry password or long-term instance token",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{configure_from, image_ref as image, RegistryProvider};

    #[test]
    fn personal_and_enterprise_domains() {
        let tencent: Tencent =
            configure_from([("username", "100012345678"), ("password", "p")]).unwrap();
        assert_eq!(
            tencent.matches(&image("ccr.ccs.tencentyun.com", "ns/app")),
            Some(100)
        );
        assert_eq!(
            tencent.matches(&image("acme.tencentcloudcr.com", "ns/app")),
            Some(100)
        );
        assert_eq!(
            tencent.matches(&image("mirror.ccs.tencentyun.com", "library/nginx")),
            None
        );
    }
}
